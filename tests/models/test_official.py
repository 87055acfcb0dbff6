"""The official GCNdiff denoiser: parameter counts, uvxyz eps without context."""
import pytest
import torch

from diffpose_viz.models import GraFormerDenoiser, GraFormerLifter, MartinezBaseline, OfficialDenoiser, count_parameters


OFFICIAL_PARAMS = 1_025_674  # counted from the official GCNdiff (github.com/GONGJIA0208/Diffpose)


def test_parameter_counts_match_the_official_architecture(capsys):
    official = count_parameters(OfficialDenoiser())
    ours = count_parameters(GraFormerDenoiser(3, 64, hidden=96, layers=5))
    lifter = count_parameters(GraFormerLifter(2))
    with capsys.disabled():
        print(f"\n[params] OfficialDenoiser {official:,}  GraFormerDenoiser(C=64) {ours:,}  "
              f"GraFormerLifter(2D) {lifter:,}  Martinez {count_parameters(MartinezBaseline()):,}")
    assert official == OFFICIAL_PARAMS
    assert abs(ours - OFFICIAL_PARAMS) / OFFICIAL_PARAMS < 0.20
    assert abs(lifter - 650_000) / 650_000 < 0.05  # GCNpose's used parameters, about 0.65 M


def test_official_denoiser_is_uvxyz_eps_without_context():
    net = OfficialDenoiser(hidden=16, layers=1, heads=2)
    x = torch.randn(2, 17, 5)
    assert net(x, torch.tensor([3, 12])).shape == (2, 17, 5) and net.prediction == "eps"
    with pytest.raises(ValueError, match="no context"):
        net(x, torch.tensor([3, 12]), torch.zeros(2, 17, 4))
