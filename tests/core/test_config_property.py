"""Property test: whatever a YAML config holds, the loader validates it or gives the one-line error."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ewpolar.core.config import AnalysisConfig, default_config_path, load_config
from ewpolar.core.errors import ConfigError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = yaml.safe_load(default_config_path("ssww").read_text(encoding="utf-8"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    return out


def _set(node: dict, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(node: dict, path: tuple) -> None:
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


ALL_PATHS = _paths(BASE)

mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(ALL_PATHS), values),
    st.tuples(st.just("delete"), st.sampled_from(ALL_PATHS), st.none()),
    st.tuples(st.just("add"), st.sampled_from([(), *ALL_PATHS]), st.tuples(st.text(max_size=10), values)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_loader_validates_or_gives_one_line(mutations: list[tuple]) -> None:
    cfg = copy.deepcopy(BASE)
    for op, path, value in mutations:
        try:
            if op == "set":
                _set(cfg, path, value)
            elif op == "delete":
                _delete(cfg, path)
            else:
                node = cfg
                for key in path:
                    node = node[key]
                if isinstance(node, dict):
                    node[value[0]] = value[1]
        except (KeyError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    with tempfile.TemporaryDirectory() as tmp:
        for extra in default_config_path("ssww").parent.glob("*.json"):
            (Path(tmp) / extra.name).write_bytes(extra.read_bytes())
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            msg = str(exc)
            assert "\n" not in msg
            assert msg.startswith(str(path))
            assert len(msg) < 600
        else:
            assert isinstance(loaded, AnalysisConfig)
