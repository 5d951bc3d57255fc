"""ONNX models: the card format, card checks, one-line errors, batching, pickling, session reuse."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from ewpolar.core.errors import InputError
from ewpolar.models import runtime as inference
from ewpolar.models.runtime import Classifier, clear_session_cache, load_classifier, sha256_file

torch = pytest.importorskip("torch")  # the test models are made with the training code
pytest.importorskip("onnx")

from ewpolar.models.training.export import FoldEnsemble, export_classifier  # noqa: E402
from ewpolar.models.training.mlp import MLP, MLPConfig  # noqa: E402

INPUTS = ["mjj", "dyjj", "ptl1"]
K = 3


def fold_models(seed: int = 0) -> list[MLP]:
    torch.manual_seed(seed)
    mean = np.array([800.0, 3.5, 60.0])
    scale = np.array([400.0, 1.2, 30.0])
    return [MLP(len(INPUTS), n_layers=2, width=8, input_mean=mean, input_scale=scale).eval()
            for _ in range(K)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[MLP]]:
    path = tmp_path_factory.mktemp("models") / "ssww_vs_bkg.onnx"
    models = fold_models()
    export_classifier(models, path, inputs=INPUTS, fold_auc=[0.8] * K, config=MLPConfig(),
                      labels={"1": "ssWW EW", "0": "background"})
    return path, models


@pytest.fixture
def model_copy(exported: tuple[Path, list[MLP]], tmp_path: Path) -> Path:
    """A private copy of the exported model and card, free to damage."""
    path, _ = exported
    shutil.copy(path, tmp_path / path.name)
    shutil.copy(path.with_suffix(".json"), tmp_path / path.with_suffix(".json").name)
    clear_session_cache()
    return tmp_path / path.name


def events(n: int, seed: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    features = {
        "mjj": rng.exponential(800.0, n),
        "dyjj": rng.uniform(2.0, 7.0, n),
        "ptl1": rng.exponential(60.0, n) + 27.0,
    }
    return features, rng.integers(0, 2**48, n, dtype=np.uint64)


def edit_card(path: Path, **changes: object) -> None:
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card.update(changes)
    card_path.write_text(json.dumps(card))


def assert_one_line(err: pytest.ExceptionInfo[InputError], *pieces: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message


def test_predictions_match_torch(exported: tuple[Path, list[MLP]]) -> None:
    path, models = exported
    clf = load_classifier(path)
    assert clf.inputs == tuple(INPUTS)
    assert clf.card.k == K
    features, event = events(5000)
    matrix = np.column_stack([features[name] for name in INPUTS])
    expected = FoldEnsemble(models).predict_proba(matrix, event.astype(np.int64))
    from_dict = clf.predict(features, event)
    assert from_dict.dtype == np.float32
    assert from_dict.shape == (5000,)
    np.testing.assert_allclose(from_dict, expected, rtol=0, atol=1e-5)
    # a dict in another key order, an [N, d] array and small chunks give the same numbers
    reordered = {name: features[name] for name in reversed(INPUTS)}
    np.testing.assert_array_equal(clf.predict(reordered, event), from_dict)
    np.testing.assert_array_equal(clf.predict(matrix, event, chunk_size=777), from_dict)


def test_empty_input_gives_empty_output(exported: tuple[Path, list[MLP]]) -> None:
    clf = load_classifier(exported[0])
    out = clf.predict({name: np.empty(0) for name in INPUTS}, np.empty(0, dtype=np.uint64))
    assert out.shape == (0,)
    assert out.dtype == np.float32
    # a chunk may hold no event of some fold: all events in fold 0 here
    features, _ = events(10)
    assert np.isfinite(clf.predict(features, np.arange(10) * K)).all()


def test_inputs_differing_from_the_card_name_missing_and_extra(
    exported: tuple[Path, list[MLP]],
) -> None:
    clf = load_classifier(exported[0])
    features, event = events(10)
    features["mll"] = features.pop("ptl1")
    with pytest.raises(InputError) as err:
        clf.predict(features, event)
    assert_one_line(err, "ssww_vs_bkg", "missing ['ptl1']", "extra ['mll']")
    with pytest.raises(InputError) as err:
        clf.predict(np.zeros((10, 2)), event)
    assert_one_line(err, "ssww_vs_bkg", "[N, 3]", "mjj, dyjj, ptl1")
    features, event = events(10)
    with pytest.raises(InputError) as err:
        clf.predict(features, event[:5])
    assert_one_line(err, "10 entries")


def test_card_listing_other_inputs_than_the_graph(model_copy: Path) -> None:
    edit_card(model_copy, inputs=[*INPUTS, "met"])
    with pytest.raises(InputError) as err:
        load_classifier(model_copy)
    assert_one_line(err, "ssww_vs_bkg", "card lists 4 inputs", "takes features of shape")


def test_sha256_mismatch_is_detected(model_copy: Path) -> None:
    blob = bytearray(model_copy.read_bytes())
    blob[-10] ^= 0xFF  # flip a byte inside the last initializer
    model_copy.write_bytes(bytes(blob))
    with pytest.raises(InputError) as err:
        load_classifier(model_copy)
    assert_one_line(err, "model 'ssww_vs_bkg'", "does not match its model card", "sha256")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_unloadable_onnx_gives_one_line(model_copy: Path, damage: str) -> None:
    blob = model_copy.read_bytes()
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob = bytes(b ^ 0x5A for b in blob[:64]) + blob[64:]
    model_copy.write_bytes(blob)
    edit_card(model_copy, sha256=sha256_file(model_copy))  # card agrees: the file itself is bad
    with pytest.raises(InputError) as err:
        load_classifier(model_copy)
    assert_one_line(err, "model 'ssww_vs_bkg'", "onnxruntime cannot load")


def test_missing_or_broken_card(model_copy: Path) -> None:
    with pytest.raises(InputError) as err:
        load_classifier(model_copy, model_copy.with_name("absent.json"))
    assert_one_line(err, "absent.json", "not found")
    model_copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(InputError) as err:
        load_classifier(model_copy)
    assert_one_line(err, "not valid JSON")
    model_copy.with_suffix(".json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError) as err:
        load_classifier(model_copy)
    assert_one_line(err, "model card lacks")
    with pytest.raises(InputError) as err:
        load_classifier(model_copy.with_name("absent.onnx"))
    assert_one_line(err, "absent.onnx", "not found")


def test_session_created_once_and_shared(model_copy: Path) -> None:
    first = load_classifier(model_copy)
    second = load_classifier(model_copy)
    assert first.session() is second.session()
    assert len(inference._SESSIONS) == 1
    options = first.session().get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1


def test_pickle_carries_the_model_but_no_session(model_copy: Path) -> None:
    clf = load_classifier(model_copy)
    features, event = events(100)
    expected = clf.predict(features, event)
    payload = pickle.dumps(clf)
    size = model_copy.stat().st_size
    assert size < len(payload) < size + 20_000  # the graph's bytes and the card, no session
    # a worker without the file (another machine) scores from the bytes that travelled
    model_copy.rename(model_copy.with_name("moved.onnx"))
    clear_session_cache()
    clone = pickle.loads(payload)
    assert isinstance(clone, Classifier)
    assert clone.card == clf.card
    assert not inference._SESSIONS
    np.testing.assert_array_equal(clone.predict(features, event), expected)
    assert len(inference._SESSIONS) == 1
    # bytes altered on the way are refused against the card's sha256
    broken = pickle.loads(payload)
    broken.blob = broken.blob[:-1] + bytes([broken.blob[-1] ^ 1])
    clear_session_cache()
    with pytest.raises(InputError) as err:
        broken.session()
    assert_one_line(err, "does not match its model card")


def test_scores_in_a_spawned_worker(exported: tuple[Path, list[MLP]]) -> None:
    clf = load_classifier(exported[0])
    features, event = events(1000)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        remote = pool.apply(clf.predict, (features, event))  # the bound method pickles clf
    np.testing.assert_array_equal(remote, clf.predict(features, event))


# --------------------------------------------------------------------------- the card format

MODELS_DIR = Path(inference.__file__).parent
SHIPPED_CARDS = sorted(MODELS_DIR.glob("ssww_*.json"))


def test_the_shipped_models_are_there() -> None:
    assert [p.stem for p in SHIPPED_CARDS] == ["ssww_ll_vs_tx", "ssww_lx_vs_tt", "ssww_sig_vs_bkg"]


@pytest.mark.parametrize("card_path", SHIPPED_CARDS, ids=lambda p: p.stem)
def test_shipped_card_matches_its_model(card_path: Path) -> None:
    """sha256 of the file, the graph's input width and the processor's observables."""
    import onnxruntime as ort
    from ewpolar.core.config import load_config
    from ewpolar.processors.ssww import SSWWProcessor

    card = inference.ModelCard.read(card_path)
    onnx_path = card_path.with_suffix(".onnx")
    assert card.sha256 == sha256_file(onnx_path), f"{onnx_path.name}: sha256 differs from its card"
    session = ort.InferenceSession(onnx_path.read_bytes(), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    assert shapes["features"][1] == len(card.inputs), "the card's inputs are not the graph's"
    known = SSWWProcessor(load_config("ssww")).feature_functions()
    assert [name for name in card.inputs if name not in known] == []
    assert (card.kind, card.k, list(card.outputs)) == ("classifier", 5, ["probability"])
    assert isinstance(inference.load_model(onnx_path), Classifier)


def _card(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "format": inference.CARD_FORMAT, "name": "m", "inputs": ["a", "b"], "sha256": "0" * 64,
        "training": {}, "ewpolar_version": "1", "created": "2026-01-01T00:00:00+00:00",
        "kind": "sally", "outputs": {"score": "float32 [N], g(x)"}}
    data.update(changes)
    return data


def test_one_card_format_for_classifiers_and_single_networks() -> None:
    single = inference.ModelCard.from_dict(_card(dctr={"clip_max": 5.0}))
    assert (single.kind, single.k, single.fold_auc) == ("sally", 1, ())
    assert single.extra == {"dctr": {"clip_max": 5.0}}
    written = single.to_dict()
    assert "fold_auc" not in written
    assert inference.ModelCard.from_dict(written) == single
    # a card without kind and outputs (the shipped ones) is a k-fold classifier
    plain = _card(training={"k": 3}, fold_auc=[0.7, 0.8, 0.9])
    del plain["kind"], plain["outputs"]
    classifier = inference.ModelCard.from_dict(plain)
    assert (classifier.kind, classifier.k, list(classifier.outputs)) == (
        "classifier", 3, ["probability"])
    assert classifier.to_dict()["mean_auc"] == pytest.approx(0.8)
    assert inference.ModelCard.from_dict(classifier.to_dict()) == classifier


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "ewpolar-mlp-card/1"}, "unknown model card format"),
    ({"kind": "classifier"}, "'training.k' (number of folds) must be an integer"),
    ({"training": {"k": 1}}, "'training.k' must be at least 2"),
    ({"training": {"k": 2}}, "lacks ['fold_auc']"),
    ({"outputs": {"features": "x"}}, "names a graph input"),
    ({"outputs": {}}, "non-empty mapping"),
    ({"inputs": ["a", "a"]}, "lists a name twice"),
])
def test_invalid_cards_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        inference.ModelCard.from_dict(_card(**changes))


def test_single_network_loads_as_a_model_but_not_as_a_classifier(tmp_path: Path) -> None:
    from ewpolar.models.training.export import export_mlp, torch_outputs

    torch.manual_seed(0)
    net = MLP(2, n_layers=1, width=4, input_mean=np.zeros(2), input_scale=np.ones(2)).eval()
    outputs = {"score": "identity", "probability": "sigmoid"}
    card = export_mlp(net, tmp_path / "sally.onnx", inputs=["a", "b"], outputs=outputs,
                      kind="sally")
    assert json.loads((tmp_path / "sally.json").read_text())["format"] == inference.CARD_FORMAT
    model = inference.load_model(tmp_path / "sally.onnx")
    assert not isinstance(model, Classifier)
    assert model.card == card
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    want = torch_outputs(net, x, outputs)
    got = model.evaluate({"a": x[:, 0], "b": x[:, 1]})
    assert set(got) == {"score", "probability"}
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)
    np.testing.assert_array_equal(model.predict(x, output="probability"), got["probability"])
    with pytest.raises(InputError, match="no output 'logit'"):
        model.predict(x, output="logit")
    with pytest.raises(InputError) as err:
        load_classifier(tmp_path / "sally.onnx")
    assert_one_line(err, "'sally'", "not a k-fold classifier")


def test_a_classifier_needs_event_numbers(exported: tuple[Path, list[MLP]]) -> None:
    model = inference.load_model(exported[0])
    features, _ = events(5)
    with pytest.raises(InputError, match="needs the event numbers"):
        model.evaluate(features)
