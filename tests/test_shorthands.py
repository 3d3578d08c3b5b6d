"""``lr_find=true`` on the command line, which Hydra alone refuses for a config group."""

import pytest

from recipe.shorthands import expand_shorthands


@pytest.mark.parametrize(
    "args, expanded",
    [
        (["lr_find=true"], ["lr_find.enabled=true"]),
        (["lr_find=False", "lr_find.apply=true"], ["lr_find.enabled=False", "lr_find.apply=true"]),
        (["lr_find=true,false"], ["lr_find.enabled=true,false"]),
        (["lr_find=default", "optimizer.lr=0.1"], ["lr_find=default", "optimizer.lr=0.1"]),
        (["-m", "optimizer=sgd,adamw"], ["-m", "optimizer=sgd,adamw"]),
    ],
)
def test_expand_shorthands(args, expanded):
    assert expand_shorthands(args) == expanded
