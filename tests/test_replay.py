from conftest import run_fake

from pdr_core.config import RunConfig
from pdr_core.render.replay import duration, trace_at
from pdr_core.testing import FakeProvider


def test_replay_shows_nodes_in_timeline_order_with_partial_text():
    trace = run_fake(RunConfig(method="pdr", width=2, depth=2), FakeProvider(delay=0.2))
    total = duration(trace)
    assert 0.5 < total < 5
    start = trace_at(trace, 0.0)
    assert start.status == "running" and start.final_answer is None
    assert {n.id for n in start.nodes} <= {"r1-draft-0", "r1-draft-1"}
    middle = trace_at(trace, 0.1)
    drafts = [n for n in middle.nodes if n.stage == "draft"]
    assert drafts and all(n.status == "running" for n in drafts)
    assert all(0 < len(n.text) < len(trace.node(n.id).text) for n in drafts)
    assert middle.budget.calls == 0
    end = trace_at(trace, total + 0.01)
    assert end.to_dict() == trace.to_dict()
    seen = [len(trace_at(trace, total * i / 10).nodes) for i in range(11)]
    assert seen == sorted(seen) and seen[-1] == len(trace.nodes)
    assert trace.node("r1-draft-0").status == "ok"  # the saved run is not changed
