"""Surrogate top-1 of the OFA supernets: OFA's accuracy predictor, against DyNAS-T's measurements."""

import time

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from nastools.evaluation import Evaluator, wide
from nastools.store import ResultStore
from nastools.supernets import (
    MobileNetV3Supernet,
    OFAAccuracyPredictor,
    arch_from_ofa_config,
    arch_to_ofa_config,
    load_supernet,
    ofa_features,
    read_dynast_measurements,
)


def reference_features(config):
    """OFA's spec2feats, written out loop by loop from its tutorial's description."""
    ks, e, d, r = list(config["ks"]), list(config["e"]), config["d"], config["r"][0]
    for stage, depth in enumerate(d):
        for block in range(stage * 4 + depth, stage * 4 + 4):
            ks[block] = e[block] = 0
    features = [0.0] * 128
    for block in range(20):
        if ks[block]:
            features[3 * block + {3: 0, 5: 1, 7: 2}[ks[block]]] = 1.0
        if e[block]:
            features[60 + 3 * block + {3: 0, 4: 1, 6: 2}[e[block]]] = 1.0
    features[120 + (r - 112) // 16] = 1.0
    return features


@pytest.fixture(scope="module")
def compofa(shared_data):
    return shared_data / "CompOFA"


@pytest.fixture(scope="module")
def predictor(compofa):
    return OFAAccuracyPredictor.from_file(compofa / "acc_predictor.pth")


def test_features_equal_ofas_encoding():
    space = load_supernet("ofa-mbv3-w1.0").space
    archs = space.sample(50, rng=0)
    expected = np.array([reference_features(arch_to_ofa_config(a)) for a in archs], dtype=np.float32)
    assert np.array_equal(ofa_features(archs), expected)
    # inactive blocks are all zero, whatever their stored values
    arch = archs[0] | {"d_0": 2, "ks_3": 7, "e_3": 6}
    assert ofa_features(arch)[0, 9:12].sum() == 0 and ofa_features(arch)[0, 69:72].sum() == 0


def test_ofa_config_round_trip():
    space = load_supernet("ofa-mbv3-w1.2").space
    for arch in space.sample(5, rng=1):
        assert space.canonical(arch_from_ofa_config(arch_to_ofa_config(arch))) == arch
        assert arch_from_ofa_config(str(arch_to_ofa_config(arch))) == arch_from_ofa_config(
            arch_to_ofa_config(arch)
        )


@pytest.mark.parametrize(
    "change, match",
    [({"r": 256}, r"r=256.*112-239"), ({"ks_0": 9}, r"ks_0.*9.*\[3, 5, 7\]"), ({"d_2": 1}, "d_2")],
)
def test_features_reject_what_the_predictor_cannot_encode(change, match):
    arch = load_supernet("ofa-mbv3-w1.0").net.max_arch()
    with pytest.raises(ValueError, match=match):
        ofa_features(arch | change)
    with pytest.raises(ValueError, match="lacks parameter 'e_19'"):
        ofa_features({k: v for k, v in arch.items() if k != "e_19"})


def test_predictor_loads_weights_only_and_is_batched(predictor):
    assert predictor.file_hash and len(predictor.file_hash) == 16
    space = load_supernet("ofa-mbv3-w1.2").space
    archs = space.sample(200, rng=2)
    batch = predictor.predict(archs)
    assert batch.shape == (200,) and batch.dtype == np.float64
    one_by_one = np.array([predictor.predict(a)[0] for a in archs[:5]])
    assert np.allclose(one_by_one, batch[:5], atol=1e-4)
    assert 60 < batch.min() and batch.max() < 90


def test_surrogate_ranks_dynast_measurements(shared_data, predictor):
    """OFA's predictor vs DyNAS-T's measured ImageNet top-1 of 2,223 w1.0 sub-networks at r=224."""
    rows = read_dynast_measurements(shared_data / "DyNAS-T")
    supernet = MobileNetV3Supernet.ofa(1.0, ofa_data=shared_data / "CompOFA")
    archs = [supernet.space.canonical(a) for a in rows.arch]
    predicted = supernet.predict_top1(archs)
    tau = kendalltau(predicted, rows.top1).statistic
    offset = float(np.mean(predicted - rows.top1))
    print(f"surrogate vs DyNAS-T: Kendall tau {tau:.3f}, mean offset {offset:+.2f} points")
    assert tau > 0.8  # measured 0.883
    assert 4.0 < offset < 8.0  # measured +5.88 (OFA's 10k hold-out vs the official validation set)
    assert np.std(predicted - rows.top1) < 1.0  # measured 0.27


def test_ofa_supernet_with_predictor(compofa, predictor):
    supernet = load_supernet("ofa-mbv3-w1.2", ofa_data=compofa)
    assert supernet.checkpoint_hash == f"surrogate-{predictor.file_hash}"
    assert supernet.metadata["top1_kind"] == "surrogate"
    net = supernet.net
    small, large = supernet.evaluate(net.min_arch() | {"r": 160}), supernet.evaluate(net.max_arch())
    assert small < large
    archs = supernet.space.sample(20, rng=3)
    assert np.allclose(supernet.predict_top1(archs), [supernet.evaluate(a) for a in archs])
    # the predictor file may be named directly, and the supernet also works at a single resolution
    fixed = MobileNetV3Supernet.ofa(1.2, ofa_data=compofa / "acc_predictor.pth", resolutions=(224,))
    arch = {k: v for k, v in net.max_arch().items() if k != "r"}
    assert fixed.evaluate(arch) == pytest.approx(large)


def test_predictor_found_through_environment(compofa, monkeypatch):
    monkeypatch.setenv("NASTOOLS_OFA_DATA", str(compofa))
    assert load_supernet("ofa-mbv3-w1.0").metadata["top1_kind"] == "surrogate"
    monkeypatch.setenv("NASTOOLS_OFA_DATA", str(compofa / "nowhere"))
    supernet = load_supernet("ofa-mbv3-w1.0")
    with pytest.raises(FileNotFoundError, match="nowhere.*hanlab"):
        supernet.evaluate(supernet.net.max_arch())


def test_missing_or_bad_predictor_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"acc_predictor\.pth.*not at .*hanlab\.mit\.edu"):
        load_supernet("ofa-mbv3-w1.2", ofa_data=tmp_path)
    with pytest.raises(ValueError, match="only to the OFA supernets|applies to the OFA"):
        load_supernet("digits-mbv3", ofa_data=tmp_path)
    bad = tmp_path / "acc_predictor.pth"
    torch.save({"0.weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not OFA's accuracy-predictor state dict"):
        OFAAccuracyPredictor.from_file(tmp_path)


def test_evaluator_predicts_surrogate_top1_without_extracting(compofa, tmp_path, monkeypatch):
    supernet = load_supernet("ofa-mbv3-w1.0", ofa_data=compofa)

    def no_extraction(arch):
        raise AssertionError("surrogate top1, MACs and params must not extract a sub-network")

    monkeypatch.setattr(supernet, "subnet", no_extraction)
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(30, rng=4)
    start = time.perf_counter()
    table = Evaluator(supernet, store, progress=False).measure(archs, ["top1", "macs", "params"])
    assert time.perf_counter() - start < 10
    by_arch = wide(table).set_index("arch")
    keys = [supernet.space.key(a) for a in archs]
    assert np.allclose(by_arch.loc[keys, "top1"], supernet.predict_top1(archs))
    assert (by_arch.loc[keys, "macs"] == [supernet.macs(a) for a in archs]).all()
    stored = store.measurements()
    assert set(stored.checkpoint_hash) == {supernet.checkpoint_hash}


def test_evaluator_refuses_top1_without_the_predictor(tmp_path, monkeypatch):
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    supernet = load_supernet("ofa-mbv3-w1.0")
    store = ResultStore(tmp_path / "r.sqlite")
    evaluator = Evaluator(supernet, store, progress=False)
    with pytest.raises(FileNotFoundError, match="acc_predictor.pth"):
        evaluator.measure(supernet.space.sample(2, rng=0), ["macs", "top1"])
    assert len(store.measurements()) == 0
    assert len(evaluator.measure(supernet.space.sample(2, rng=0), ["macs"])) == 2


def test_embedded_supernet_top1_is_measured():
    supernet = load_supernet()
    assert supernet.metadata["top1_kind"] == "measured"
    assert supernet.needs_subnet("top1") and not supernet.needs_subnet("macs")
