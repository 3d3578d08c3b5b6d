"""A user's own net and data module, in a package outside ``src/`` found on ``PYTHONPATH``, trained by src/train.py."""

import os
import subprocess
import sys
import textwrap

from conftest import ROOT, TINY

NET = """
    import math
    from torch import nn

    class Net(nn.Module):
        def __init__(self, input_shape, num_classes, hidden=16):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
            )

        def forward(self, x):
            return self.layers(x)
"""

DATA = """
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Data(L.LightningDataModule):
        input_shape = (6,)
        num_classes = 3

        def __init__(self, batch_size: int = 16, seed: int = 0):
            super().__init__()
            self.batch_size = batch_size
            x = torch.randn(300, 6, generator=torch.Generator().manual_seed(seed))
            y = x[:, :3].argmax(1)
            self.parts = {"train": (x[:200], y[:200]), "val": (x[200:250], y[200:250]), "test": (x[250:], y[250:])}

        def _loader(self, split, shuffle=False):
            return DataLoader(TensorDataset(*self.parts[split]), batch_size=self.batch_size, shuffle=shuffle)

        def train_dataloader(self):
            return self._loader("train", shuffle=True)

        def val_dataloader(self):
            return self._loader("val")

        def test_dataloader(self):
            return self._loader("test")
"""


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_a_net_and_data_module_from_the_users_package_train_and_test(tmp_path):
    write(tmp_path / "mypkg" / "__init__.py", "")
    write(tmp_path / "mypkg" / "net.py", NET)
    write(tmp_path / "mypkg" / "data.py", DATA)
    write(tmp_path / "conf" / "data" / "mydata.yaml", "_target_: mypkg.data.Data\nbatch_size: 32\nseed: ${seed}\n")
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, str(ROOT / "src" / "train.py"), f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "data=mydata",
        "~model", "+model._target_=mypkg.net.Net", "+model.hidden=8", *TINY, "~logger", "~callbacks.lr_monitor",
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test/acc" in result.stdout + result.stderr  # with the progress bar, rich prints on stderr
    assert list((run_dir / "checkpoints").glob("epoch_000-*.ckpt"))
    wrong = subprocess.run(
        [*cmd[:-1], "+model.depth=3", f"hydra.run.dir={tmp_path / 'wrong'}"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert "error: model.depth=3: not an argument of Net; allowed: ['hidden', 'input_shape'," in wrong.stderr
