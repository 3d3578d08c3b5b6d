"""The transformer: tokens for 1-D, vector and image inputs, pooling, patching, conv stem, no-decay names, errors,
learning."""

import pytest
import torch
from torch import nn

from recipe.build import build
from recipe.data.synthetic import SyntheticDataModule
from recipe.errors import ConfigError
from recipe.models.transformer import Transformer
from recipe.optim import OptimizerSpec, build_optimizer


@pytest.mark.parametrize(
    "shape, patch_size, tokens",
    [((1, 40), 1, 40), ((1, 40), 4, 10), ((64,), 1, 64), ((64,), 8, 8), ((1, 8, 8), 1, 64), ((3, 8, 8), 2, 16)],
)
@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_shapes_tokens_and_pooling(shape, patch_size, tokens, pool):
    net = Transformer(shape, 7, dim=16, depth=1, heads=2, patch_size=patch_size, pool=pool)
    assert net.pos_embed.shape == (1, tokens + (pool == "cls"), 16)
    assert (net.cls_token is not None) == (pool == "cls")
    for mode in (net.train, net.eval):  # eval takes torch's fused inference path
        mode()
        assert net(torch.randn(5, *shape)).shape == (5, 7)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_pooling_reads_the_class_token_or_the_mean(pool):
    net = Transformer((1, 12), 3, dim=8, depth=1, heads=2, pool=pool, dropout=0.0).eval()
    seen = {}
    net.head.register_forward_hook(lambda m, inputs, out: seen.setdefault("head", inputs[0]))
    net.norm.register_forward_hook(lambda m, inputs, out: seen.setdefault("tokens", out))
    net(torch.randn(2, 1, 12))
    expected = seen["tokens"][:, 0] if pool == "cls" else seen["tokens"].mean(dim=1)
    assert torch.equal(seen["head"], expected)


@pytest.mark.parametrize("norm, layer_norms", [("layer", 2 * 2 + 1), ("none", 0)])
def test_norm_choices(norm, layer_norms):
    net = Transformer((1, 20), 4, dim=16, depth=2, heads=2, norm=norm)
    assert sum(isinstance(m, nn.LayerNorm) for m in net.modules()) == layer_norms
    assert net.eval()(torch.randn(3, 1, 20)).shape == (3, 4)


def test_layers_are_pre_norm_torch_encoder_layers():
    net = Transformer((1, 20), 4, dim=16, depth=3, heads=4, mlp_ratio=3.0)
    layers = list(net.layers)
    assert len(layers) == 3
    assert all(isinstance(layer, nn.TransformerEncoderLayer) and layer.norm_first for layer in layers)
    assert layers[0].linear1.out_features == 48
    # each layer is built on its own, not a deep copy of the first
    assert not torch.equal(layers[0].self_attn.in_proj_weight, layers[1].self_attn.in_proj_weight)


@pytest.mark.parametrize(
    "shape, conv, norm", [((1, 40), nn.Conv1d, nn.BatchNorm1d), ((3, 8, 8), nn.Conv2d, nn.BatchNorm2d)]
)
def test_conv_stem_feeds_the_patch_embedding(shape, conv, norm):
    net = Transformer(shape, 5, dim=16, depth=1, heads=2, patch_size=2, stem_channels=[8, 12], stem_kernel=5)
    convs = [m for m in net.stem if isinstance(m, conv)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.bias) for c in convs] == [
        (shape[0], 8, 5, None),  # no conv bias before a norm
        (8, 12, 5, None),
    ]
    assert sum(isinstance(m, norm) for m in net.stem) == 2
    assert net.embed.in_channels == 12
    seen = []
    net.embed.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape))
    assert net(torch.randn(4, *shape)).shape == (4, 5)
    assert seen[0] == (4, 12, *shape[1:])  # 'same' padding: the stem keeps the length
    assert len(Transformer(shape, 5, dim=16, depth=1, heads=2).stem) == 0  # no stem by default


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_no_weight_decay_names_exist_and_get_no_decay(pool):
    net = Transformer((1, 40), 10, dim=16, depth=1, heads=2, pool=pool)
    params = dict(net.named_parameters())
    names = net.no_weight_decay()
    assert set(names) == ({"pos_embed", "cls_token"} if pool == "cls" else {"pos_embed"})
    assert all(params[name].ndim == 3 for name in names)  # not caught by the "1-D or bias" rule
    optimizer = build_optimizer(net, OptimizerSpec("adamw", lr=1e-3, weight_decay=0.1))
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert all(decay_of[id(params[name])] == 0.0 for name in names)
    assert decay_of[id(net.embed.weight)] == 0.1 and decay_of[id(net.head.weight)] == 0.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"input_shape": (2, 3, 4, 5)},
            r"^model='transformer': takes inputs of shape .*, but the data gives \(2, 3, 4, 5\)$",
        ),
        ({"patch_size": 3}, r"^model.patch_size=3: must divide the input's spatial sizes \(40,\)$"),
        ({"heads": 3}, r"^model.heads=3: must divide model.dim=16$"),
        ({"pool": "max"}, r"^model.pool='max': choose one of \['cls', 'mean'\]$"),
        ({"norm": "batch"}, r"^model.norm='batch': the transformer takes one of \['layer', 'none'\]$"),
        ({"norm": "rms"}, r"^model.norm='rms': choose one of"),
        ({"init": "he"}, r"^model.init='he': choose one of"),
        ({"stem_channels": [8, 0]}, r"^model.stem_channels=\[8, 0\]: a list of positive widths$"),
        ({"stem_kernel": 4}, r"^model.stem_kernel=4: must be a positive odd number"),
        ({"stem_norm": "rms"}, r"^model.norm='rms': choose one of"),
    ],
)
def test_bad_settings_give_one_line(kwargs, message):
    settings = {"input_shape": (1, 40), "num_classes": 10, "dim": 16, "depth": 1, "heads": 2, **kwargs}
    with pytest.raises(ConfigError, match=message) as err:
        Transformer(**settings)
    assert "\n" not in str(err.value)


def test_config_builds_with_the_data_shape(make_cfg):
    _, module = build(make_cfg("data=synthetic", "data.input_shape=[1,40]", "model=transformer", "model.patch_size=4"))
    assert isinstance(module.net, Transformer)
    assert module.net.pos_embed.shape[1] == 10 + 1
    with pytest.raises(ConfigError, match=r"but the data gives \(2, 3, 4, 5\)"):
        build(make_cfg("data=synthetic", "data.input_shape=[2,3,4,5]", "model=transformer"))


@pytest.fixture
def one_thread():
    """Ops this small gain nothing from a second thread, whose synchronization costs seconds on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_few_steps_reduce_the_loss(one_thread):
    torch.manual_seed(0)
    data = SyntheticDataModule(n_train=256, n_val=8, n_test=8, input_shape=(1, 16), num_classes=4, noise=1.0)
    data.setup()
    x, y = data.datasets["train"].tensors
    net = Transformer((1, 16), 4, dim=32, depth=2, heads=4, patch_size=2, dropout=0.0)
    optimizer = build_optimizer(net, OptimizerSpec("adamw", lr=3e-3, weight_decay=0.01))
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
