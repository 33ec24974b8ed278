"""The public files of the OFA MobileNetV3 supernets, pinned: source URL at a fixed commit and SHA-256.

Each is fetched on first use into the data cache (:mod:`nastools.datasets`), laid out as the
relative paths below, which are also the layout ``data_dir`` takes. The pins are the SHA-256 of
the files at the commits named here (raw GitHub downloads of the blobs, byte for byte).
"""

from __future__ import annotations

from nastools.datasets import DataFile, Dataset, github_raw_url

__all__ = ["DATASETS", "DYNAST_DATA", "I7_8700K_DATA", "NOTE10_DATA", "OFA_PREDICTOR_DATA"]

# OFA's artifacts as CompOFA redistributes them (Apache-2.0; OFA itself: MIT)
_COMPOFA = ("gatech-sysml/CompOFA", "6b53946157b8ee16118187872ed19e45dd9692c4")
_NSGANETV2 = ("mikelzc1990/nsganetv2", "04c495a6ba5d351aae97c18542597f5b2d56212b")
_DYNAST = ("IntelLabs/DyNAS-T", "251cb5e0083077522eb554691f480ba750e63246")

_NOTE10_SHA256 = {
    160: "a2671a45e9400542679ed03de946b45d6a35010f9ab21834af3e7ba8341d36d1",
    164: "146c34f116ea2dd6b0a421e3b9b3b1a106ba2817c928e7c66a0b58703946f7ea",
    168: "08c833755d446cb65a6224e0fed7ef71be29709bfd2aa12009d4b645e37b4ce4",
    172: "dead1205668fec983c8d7d8445d2dc3afe30a617917218becc90a8b3b8e72a57",
    176: "34223ae037d5719a5f33261bdfd9341f590a2999edf520f174309605dc06307c",
    180: "a4c43390a41c6affec5c0d2f927cd671a7d99341dbcb0178876794d9683d8ef6",
    184: "94e0b62a291cc8d77a980478edc96d4ab4b6fe9b0209bc87d296bd2812ccd3d3",
    188: "2f33a119bf5d4218fd390b785d3d03fd52b3522c77f58b751ff38f01a249fbd0",
    192: "0ff5ca0649e56ad34a42d6a8a6f20adb5121c8d12d135299397b310472db79e2",
    196: "80217a43dc40c8ce45b54c4cd60d58a79ee091015035f0d4388a09c192074bab",
    200: "4bb6703197777ac01483cbe6340979dc8090ed6471c3f47d4e08749e523d4c53",
    204: "129a4ee3f46f2b732f93c43dc04540c864adcc68e5f495ab0b183dc748fead43",
    208: "41aa63af766a8298354e6aa5ae69d512ac68656a6e7d0a4fa5dc725c8d438633",
    212: "cacb0d9f262e1e029c39a639acb856b16d16cbd7db365056ee7bc55bbb41d417",
    216: "bbb64c0be7b420139d92a79757923e7b4c5d8d61730a90995d1ab51f6f718939",
    220: "75b0954b2fa678b5b2422b3edbc51983609a9a441d77fe4bb68888da8bb8984e",
    224: "c13a9bcb3f4becae844bce4897129c4e42975984c1029cbd5acb48c970136530",
}
_DYNAST_SHA256 = {  # mbnv3w10_<name>.csv
    "evoga_acc": "460efa9d68388f0523248c68996738a4cf1580115299c5223386acefd01c2904",
    "evonsga2_acc_macs": "26382008e3311c93cbb1f8de3310ac69a37c650c9692e032c90e04805e523cbe",
    "evounsga3_acc_macs_params": "b24f148a72d2f1bb1b3422a2f7f8a1f21e59bf5d47f033c0945840ac5d78384c",
    "linasga_acc": "63f986501c47e44f3c7426acbcbf8787662a8aa93683d95461a6f6bb659765f7",
    "linasnsga2_acc_macs": "cc49278a179df47e6a8f5906e0bd32a6d2f4d29c0d0424ab0ac14eb4a10f8962",
}


def _github(repo: tuple[str, str], source: str, path: str, sha256: str) -> DataFile:
    return DataFile(path, github_raw_url(*repo, source), sha256)


#: OFA's accuracy predictor (the surrogate top-1 of ``ofa-mbv3-*``).
OFA_PREDICTOR_DATA = Dataset(
    name="ofa-predictor",
    description="OFA's ImageNet accuracy predictor, acc_predictor.pth (1.5 MB): surrogate top1 of ofa-mbv3-*",
    files=(
        _github(
            _COMPOFA,
            "NAS/checkpoints/acc_predictor.pth",
            "CompOFA/acc_predictor.pth",
            "48685122a3540636b06699af66cd816456b25f29b69563e2fda9bed4018eeba0",
        ),
    ),
    source=f"github.com/{_COMPOFA[0]} at {_COMPOFA[1][:12]} (Apache-2.0; from OFA, MIT)",
)
#: OFA's Samsung Note10 per-layer latency tables (hardware ``lut-note10``).
NOTE10_DATA = Dataset(
    name="lut-note10",
    description="OFA's Samsung Note10 latency tables for w1.2, 160-224 px (0.3 MB): hardware lut-note10",
    files=tuple(
        _github(
            _COMPOFA,
            f"NAS/checkpoints/latency_table@note10/{r}_lookup_table.yaml",
            f"CompOFA/latency_table@note10/{r}_lookup_table.yaml",
            sha256,
        )
        for r, sha256 in _NOTE10_SHA256.items()
    ),
    source=f"github.com/{_COMPOFA[0]} at {_COMPOFA[1][:12]} (Apache-2.0; from OFA, MIT)",
)
#: NSGANetV2's Intel i7-8700K per-block latency table (hardware ``lut-i7-8700k``).
I7_8700K_DATA = Dataset(
    name="lut-i7-8700k",
    description="NSGANetV2's Intel i7-8700K latency table for w1.0 and w1.2, 96-256 px (0.5 MB): "
    "hardware lut-i7-8700k",
    files=(
        _github(
            _NSGANETV2,
            "data/i7-8700K_lut.yaml",
            "nsganetv2/i7-8700K_lut.yaml",
            "4cd187ee5466802099f502a4d496cbee270a0b21862351722a527dc3a43f85e6",
        ),
    ),
    source=f"github.com/{_NSGANETV2[0]} at {_NSGANETV2[1][:12]} (Apache-2.0)",
)
#: DyNAS-T's measured OFA MobileNetV3-w1.0 sub-networks (``read_dynast_measurements``).
DYNAST_DATA = Dataset(
    name="dynast-mbv3",
    description="DyNAS-T's 2,223 measured OFA MobileNetV3-w1.0 sub-networks: ImageNet top-1, MACs, "
    "params (0.6 MB): read_dynast_measurements",
    files=tuple(
        _github(_DYNAST, f"notebooks/data/mbnv3w10_{name}.csv", f"DyNAS-T/mbnv3w10_{name}.csv", sha256)
        for name, sha256 in _DYNAST_SHA256.items()
    ),
    source=f"github.com/{_DYNAST[0]} at {_DYNAST[1][:12]} (Apache-2.0)",
    default=False,
)

#: This family's public datasets by name (``nastools data list``).
DATASETS = {d.name: d for d in (OFA_PREDICTOR_DATA, NOTE10_DATA, I7_8700K_DATA, DYNAST_DATA)}
