"""The committed graphs/*.json are exactly what the tracer emits now."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
import trace  # noqa: E402

GRAPHS = pathlib.Path(__file__).parent.parent.parent / "graphs"


def test_committed_graphs_are_current():
    for module in trace.ARCHITECTURES:
        path = GRAPHS / f"{module.SPEC['architecture']}.json"
        assert path.read_text() == trace.render(trace.trace(module)), f"{path} is stale: run `make graphs`"
