"""Models: shapes through 1-D and 2-D inputs, each norm and init choice, and shape errors."""

import pytest
import torch
from torch import nn

from recipe.errors import ConfigError
from recipe.models import CNN, MLP
from recipe.models.layers import NORMS, init_weights, norm


@pytest.mark.parametrize("shape", [(1, 40), (3, 8, 8)])
@pytest.mark.parametrize("kind", NORMS)
def test_cnn_maps_1d_and_2d_inputs_to_logits(shape, kind):
    net = CNN(shape, num_classes=7, channels=(8, 16), norm=kind)
    assert net(torch.randn(4, *shape)).shape == (4, 7)
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert all((c.bias is None) == (kind != "none") for c in convs)
    assert isinstance(convs[0], nn.Conv1d if len(shape) == 2 else nn.Conv2d)


@pytest.mark.parametrize("kind", NORMS)
def test_mlp_norms(kind):
    net = MLP((1, 40), 10, hidden_sizes=(16,), norm=kind)
    assert net(torch.randn(5, 1, 40)).shape == (5, 10)


def test_norm_layers_by_kind():
    assert isinstance(norm("batch", 8, 2), nn.BatchNorm2d)
    assert norm("group", 48, 1).num_groups == 16  # 32 does not divide 48
    assert isinstance(norm("layer", 8, 0), nn.LayerNorm)
    assert norm("layer", 8, 1).num_groups == 1


@pytest.mark.parametrize(("scheme", "expected_std"), [("kaiming", (2 / 400) ** 0.5), ("xavier", (2 / 800) ** 0.5)])
def test_init_std_follows_the_formula(scheme, expected_std):
    torch.manual_seed(0)
    layer = nn.Linear(400, 400)
    init_weights(layer, scheme)
    assert layer.weight.std().item() == pytest.approx(expected_std, rel=0.02)
    assert torch.all(layer.bias == 0)


def test_default_init_is_untouched():
    layer = nn.Linear(4, 4)
    before = layer.weight.clone()
    init_weights(layer, "default")
    assert torch.equal(before, layer.weight)


def test_cnn_rejects_flat_input_naming_the_shape():
    with pytest.raises(ConfigError, match=r"data gives \(64,\)"):
        CNN((64,), 10)


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"norm": "instance"}, "model.norm"), ({"init": "orthogonal"}, "model.init")]
)
def test_bad_choices_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        MLP((4,), 2, **kwargs)
