"""Allocation bounds in portfolio files (seed 002): `bounds: {TICKER: [min, max]}` validated with clear errors."""

from __future__ import annotations

import json

import pytest

from tracking_pipeline.lake import LakeInputError
from tracking_pipeline.lake.portfolios import parse_portfolio
from tracking_pipeline.services.portfolio_risk import config_bounds

WHERE = "portfolios/p.yaml"


def spec(**extra) -> dict:
    return {"name": "P", "start_date": "2020-01-02", "variants": ["raw"],
            "holdings": [{"effective_date": "2020-01-02", "weights": {"AAPL": 0.3, "MSFT": 0.3}},
                         {"effective_date": "2021-01-04", "weights": {"AAPL": 0.25, "XOM": 0.3}}], **extra}


def parse(raw: dict):
    return parse_portfolio(raw, WHERE, "SPY", [])


def test_bounds_are_read_and_stored_in_the_config() -> None:
    got = parse(spec(bounds={"AAPL": [0.2, 0.35], " MSFT ": [0, 0.5]}))
    assert got.bounds == {"AAPL": (0.2, 0.35), "MSFT": (0.0, 0.5)}
    assert got.config["bounds"] == {"AAPL": [0.2, 0.35], "MSFT": [0.0, 0.5]}
    assert config_bounds(json.dumps(got.config)) == got.bounds
    assert parse(spec()).bounds == {} and "bounds" not in parse(spec()).config
    assert config_bounds(json.dumps(parse(spec()).config)) is None


@pytest.mark.parametrize(("bounds", "field", "message"), [
    (["AAPL", 0.1], "bounds", "must map ticker to [min, max]"),
    ({"AAPL": 0.3}, "bounds.AAPL", "must be [min, max]"),
    ({"AAPL": [0.1, 0.2, 0.3]}, "bounds.AAPL", "must be [min, max]"),
    ({"AAPL": ["low", 0.4]}, "bounds.AAPL", "must be a number"),
    ({"AAPL": [0.4, 0.2]}, "bounds.AAPL", "0 <= min <= max <= 1, got [0.4, 0.2]"),
    ({"AAPL": [-0.1, 0.4]}, "bounds.AAPL", "0 <= min <= max <= 1"),
    ({"AAPL": [0.1, 1.5]}, "bounds.AAPL", "0 <= min <= max <= 1"),
    ({"AAPL": [0.1, float("nan")]}, "bounds.AAPL", "must be finite"),
])
def test_malformed_bounds_name_the_field(bounds, field: str, message: str) -> None:
    with pytest.raises(LakeInputError) as err:
        parse(spec(bounds=bounds))
    assert f"'{field}'" in str(err.value) and message in str(err.value) and WHERE in str(err.value)


def test_targets_outside_their_bounds_are_rejected() -> None:
    with pytest.raises(LakeInputError, match=r"holdings\[1\]\.weights\.AAPL.*0.25 of AAPL on 2021-01-04 is outside "
                                             r"its bounds \[0.28, 0.4\]"):
        parse(spec(bounds={"AAPL": [0.28, 0.4]}))
    # a bounded ticker an entry does not hold has weight 0 there
    with pytest.raises(LakeInputError, match=r"holdings\[0\]\.weights\.XOM.*0.0 of XOM on 2020-01-02"):
        parse(spec(bounds={"XOM": [0.1, 0.4]}))
    assert parse(spec(bounds={"XOM": [0.0, 0.3]})).bounds == {"XOM": (0.0, 0.3)}
