"""Surrogate top-1 of the OFA supernets: OFA's accuracy predictor, against DyNAS-T's measurements."""

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from nastools.evaluation import Evaluator, wide
from nastools.store import ResultStore
from nastools.supernet import default_supernet, file_hash, load_supernet
from nastools.supernets.mobilenetv3 import (
    OFAAccuracyPredictor,
    arch_from_ofa_config,
    arch_to_ofa_config,
    ofa,
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
    supernet = ofa(1.0, data_dir=shared_data)
    archs = [supernet.space.canonical(a) for a in rows.arch]
    predicted = supernet.predict_top1(archs)
    tau = kendalltau(predicted, rows.top1).statistic
    offset = float(np.mean(predicted - rows.top1))
    print(f"surrogate vs DyNAS-T: Kendall tau {tau:.3f}, mean offset {offset:+.2f} points")
    assert tau > 0.8  # measured 0.883
    assert 4.0 < offset < 8.0  # measured +5.88 (OFA's 10k hold-out vs the official validation set)
    assert np.std(predicted - rows.top1) < 1.0  # measured 0.27


def test_ofa_supernet_with_predictor(shared_data, compofa, predictor):
    supernet = load_supernet("ofa-mbv3-w1.2", data_dir=shared_data)
    assert supernet.checkpoint_hash == f"surrogate-{predictor.file_hash}"
    assert supernet.task_metric.name == "top1" and supernet.task_metric.kind == "prediction"
    assert "accuracy predictor" in supernet.metadata["top1_source"]
    assert supernet.metadata["accuracy_predictor"] == str(compofa / "acc_predictor.pth")
    assert not supernet.needs_subnet("top1")
    net = supernet.net
    small = supernet.evaluate(net.min_arch() | {"r": 160}, "top1")
    large = supernet.evaluate(net.max_arch(), "top1")
    assert small < large
    archs = supernet.space.sample(20, rng=3)
    assert np.allclose(supernet.predict_top1(archs), [supernet.evaluate(a, "top1") for a in archs])
    assert np.allclose(supernet.predict_top1(archs), predictor.predict(archs))
    # the folder holding the file, or the file itself, also do, and the supernet works at one resolution
    assert load_supernet("ofa-mbv3-w1.2", data_dir=compofa).checkpoint_hash == supernet.checkpoint_hash
    fixed = ofa(1.2, data_dir=compofa / "acc_predictor.pth", resolutions=(224,))
    arch = {k: v for k, v in net.max_arch().items() if k != "r"}
    assert fixed.evaluate(arch, "top1") == pytest.approx(large)
    with pytest.raises(ValueError, match=r"r.*\[160, 176, 192, 208, 224\]"):
        supernet.predict_top1([net.max_arch() | {"r": 200}])


def test_resolutions_the_predictor_cannot_encode_are_refused(shared_data):
    with pytest.raises(ValueError, match=r"r=256 is outside"):
        ofa(1.2, data_dir=shared_data, resolutions=(224, 256))
    assert "r" in ofa(1.2, resolutions=(224, 256)).space.choices  # architecture-only: no predictor to ask


def test_predictor_found_through_environment(compofa, monkeypatch):
    monkeypatch.setenv("NASTOOLS_OFA_DATA", str(compofa))
    assert load_supernet("ofa-mbv3-w1.0").task_metric.kind == "prediction"
    assert load_supernet("ofa-mbv3-w1.0").checkpoint_hash.startswith("surrogate-")
    monkeypatch.setenv("NASTOOLS_OFA_DATA", str(compofa / "nowhere"))
    supernet = load_supernet("ofa-mbv3-w1.0")
    assert supernet.checkpoint_hash == "untrained"
    with pytest.raises(FileNotFoundError, match="nowhere.*hanlab"):
        supernet.evaluate(supernet.net.max_arch(), "top1")


def test_missing_or_bad_predictor_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"acc_predictor\.pth.*not in .*hanlab\.mit\.edu"):
        load_supernet("ofa-mbv3-w1.2", data_dir=tmp_path)
    with pytest.raises(
        ValueError, match=r"'digits-mbv3' takes the options \['checkpoint'\]; got \['data_dir'\]"
    ):
        load_supernet("digits-mbv3", data_dir=tmp_path)
    bad = tmp_path / "acc_predictor.pth"
    torch.save({"0.weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not OFA's accuracy-predictor state dict"):
        OFAAccuracyPredictor.from_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="hanlab"):
        OFAAccuracyPredictor.from_file(tmp_path / "nowhere")


def test_ofa_checkpoint_weights_are_loaded_and_named_in_the_hash(tmp_path, shared_data, predictor):
    source = ofa(1.0).net
    with torch.no_grad():
        source.classifier.linear.weight.normal_()
    path = tmp_path / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save({"state_dict": source.state_dict()}, path)
    loaded = ofa(1.0, checkpoint=path)
    assert torch.equal(loaded.net.classifier.linear.weight, source.classifier.linear.weight)
    assert loaded.checkpoint_hash == file_hash(path)
    both = ofa(1.0, checkpoint=path, data_dir=shared_data)
    assert both.checkpoint_hash == f"{file_hash(path)}-surrogate-{predictor.file_hash}"
    with pytest.raises(FileNotFoundError, match="OFA checkpoint .* does not exist"):
        ofa(1.0, checkpoint=tmp_path / "absent.pth")


def test_evaluator_predicts_surrogate_top1_without_extracting(shared_data, tmp_path, monkeypatch):
    supernet = load_supernet("ofa-mbv3-w1.0", data_dir=shared_data)

    def no_extraction(arch):
        raise AssertionError("surrogate top1, MACs and params must not extract a sub-network")

    monkeypatch.setattr(supernet, "subnet", no_extraction)
    store = ResultStore(tmp_path / "r.sqlite")
    archs = supernet.space.sample(30, rng=4)
    table = Evaluator(supernet, store, progress=False).measure(archs, ["top1", "macs", "params"])
    by_arch = wide(table).set_index("arch")
    keys = [supernet.space.key(a) for a in archs]
    assert np.allclose(by_arch.loc[keys, "top1"], supernet.predict_top1(archs))
    assert (by_arch.loc[keys, "macs"] == [supernet.macs(a) for a in archs]).all()
    stored = store.measurements()
    assert set(stored.checkpoint_hash) == {supernet.checkpoint_hash}
    assert set(stored[stored.metric == "top1"].kind) == {"prediction"}
    assert set(stored[stored.metric != "top1"].kind) == {"proxy"}


def test_evaluator_refuses_top1_without_the_predictor(tmp_path, monkeypatch):
    monkeypatch.delenv("NASTOOLS_OFA_DATA", raising=False)
    supernet = load_supernet("ofa-mbv3-w1.0")
    store = ResultStore(tmp_path / "r.sqlite")
    evaluator = Evaluator(supernet, store, progress=False)
    with pytest.raises(FileNotFoundError, match="acc_predictor.pth"):
        evaluator.measure(supernet.space.sample(2, rng=0), ["macs", "top1"])
    assert len(store.measurements()) == 0
    assert len(evaluator.measure(supernet.space.sample(2, rng=0), ["macs"])) == 2
    with pytest.raises(FileNotFoundError, match="acc_predictor.pth"):
        supernet.predict_top1(supernet.space.sample(1, rng=0))


def test_embedded_supernet_top1_is_measured():
    supernet = load_supernet(default_supernet())
    assert supernet.supernet_id == "digits-mbv3"
    assert supernet.task_metric.kind == "validation"
    assert supernet.needs_subnet("top1") and not supernet.needs_subnet("macs")
    with pytest.raises(ValueError, match="measures top1 \\(no surrogate\\); use evaluate"):
        supernet.predict_top1(supernet.space.sample(1, rng=0))
