"""The report read and rendered a batch of portfolios at a time (bounded memory), here or in parallel worker
processes, is the report made all at once, byte for byte, whatever the batch size and number of workers."""

from __future__ import annotations

from tracking_pipeline.reporting.performance import report_files, worker_count
from tracking_pipeline_tests.tracker_env import tracker_env  # noqa: F401 - the session fixture


def test_report_in_batches_equals_report_at_once(tracker_env):  # noqa: F811
    wh = tracker_env.handle()
    made = {(batch, workers): list(report_files(wh, 0.02, generated="2026-01-01 00:00 UTC", url="http://app",
                                                threshold=0.05, batch=batch, workers=workers))
            for batch, workers in ((1000, 1), (4, 1), (1, 1), (2, 2))}
    assert worker_count(3, 2) == 2 and worker_count(1, 2) == 1  # (2, 2) above ran in two worker processes
    whole = made[(1000, 1)]
    pages = [f for f in whole if f.kind == "page" and f.name != "index.html"]
    assert len(pages) >= 5 and all(b"chart-cumulative" in f.body for f in pages)
    assert whole[0].kind == "script" and whole[-1].name == "index.html"
    assert all(f"{f.name}".encode() in whole[-1].body for f in pages)
    for key in ((4, 1), (1, 1), (2, 2)):
        assert [(f.name, f.kind, f.content_type) for f in made[key]] == \
               [(f.name, f.kind, f.content_type) for f in whole]
        for a, b in zip(whole, made[key]):
            assert a.body == b.body, (key, a.name)
