//! Tokenizing prompts and decoding a token stream without ever splitting a UTF-8 character.
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    add_bos: bool,
}

impl Tokenizer {
    pub fn new(json: &str, bos_token: Option<&str>, add_bos: bool) -> Result<Tokenizer> {
        let inner = parse(json).map_err(|e| Error::Tokenizer(format!("{e}")))?;
        let bos = bos_token.and_then(|t| inner.token_to_id(t));
        Ok(Tokenizer { inner, bos, add_bos })
    }

    /// An artifact's tokenizer, with its BOS rule.
    pub fn for_artifact(meta: &crate::artifact::Meta) -> Result<Tokenizer> {
        Tokenizer::new(&meta.tokenizer, meta.special_tokens.get("bos_token").map(String::as_str), meta.add_bos)
    }

    /// Token ids of `text`; special tokens written in the text are recognised. BOS is
    /// prepended when the model asks for it and the text does not already start with it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode_without_bos(text)?;
        if let Some(bos) = self.added_bos() {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// The BOS id when the model adds one to every text.
    pub fn added_bos(&self) -> Option<u32> {
        self.bos.filter(|_| self.add_bos)
    }

    /// Token ids of `text` as they are, no BOS added (transformers' `add_special_tokens=False`).
    pub fn encode_without_bos(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.inner.encode(text, false).map_err(|e| Error::Tokenizer(e.to_string()))?.get_ids().to_vec())
    }

    /// The id of a token's text (a special token's, say).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id(text)
    }

    /// Ids below this are valid (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

/// A tokenizer.json, as `tokenizers` reads it but faster: its model straight into the BPE
/// model where it is one (the crate's own reader buffers a model of any kind as a JSON value
/// first: for Qwen2.5's 151k tokens and merges, most of a 0.3 s load), the rest field by field
/// as the crate's reader takes them, the added tokens last, given their ids by the model.
fn parse(json: &str) -> std::result::Result<tokenizers::Tokenizer, Box<dyn std::error::Error + Send + Sync>> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::{AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerBuilder};
    let fields: std::collections::HashMap<String, &serde_json::value::RawValue> = serde_json::from_str(json)?;
    fn field<T: serde::de::DeserializeOwned>(fields: &std::collections::HashMap<String, &serde_json::value::RawValue>, name: &str) -> serde_json::Result<Option<T>> {
        fields.get(name).map_or(Ok(None), |raw| serde_json::from_str(raw.get()))
    }
    let model = fields.get("model").ok_or("tokenizer.json has no model")?.get();
    let model = match serde_json::from_str::<BPE>(model) {
        Ok(bpe) => ModelWrapper::BPE(bpe),
        Err(_) => serde_json::from_str(model)?,
    };
    let mut tokenizer = TokenizerBuilder::<ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>::new()
        .with_model(model)
        .with_normalizer(field(&fields, "normalizer")?)
        .with_pre_tokenizer(field(&fields, "pre_tokenizer")?)
        .with_post_processor(field(&fields, "post_processor")?)
        .with_decoder(field(&fields, "decoder")?)
        .with_truncation(field(&fields, "truncation")?)
        .with_padding(field(&fields, "padding")?)
        .build()?;
    #[derive(serde::Deserialize)]
    struct WithId {
        #[serde(flatten)]
        token: AddedToken,
    }
    let added: Vec<WithId> = field(&fields, "added_tokens")?.unwrap_or_default();
    tokenizer.add_tokens(&added.into_iter().map(|a| a.token).collect::<Vec<_>>());
    Ok(tokenizer.into())
}

/// Turns generated ids into text pieces as soon as they form whole characters. Only a short
/// window of recent ids is re-decoded per token (byte-level tokens need their neighbours).
pub struct StreamDecoder {
    ids: Vec<u32>,
    /// ids[prefix..read] were decoded and handed out already
    prefix: usize,
    read: usize,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder { ids: vec![], prefix: 0, read: 0 }
    }

    /// The new text this token completes (empty while a character is still partial).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let done = tok.decode(&self.ids[self.prefix..self.read])?;
        let text = tok.decode(&self.ids[self.prefix..])?;
        if text.ends_with('\u{FFFD}') || text.len() <= done.len() || !text.is_char_boundary(done.len()) {
            return Ok(String::new());
        }
        self.prefix = self.read;
        self.read = self.ids.len();
        Ok(text[done.len()..].to_string())
    }
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}
