"""Adding a method is one new file in core/methods/ (ARCHITECTURE.md, "Adding a method"): written here into a
folder of the methods package, it is trained from the command line and offered, with its own setting, by the app."""

import sys
import textwrap

import pytest

from ssl_studio import cli
from ssl_studio.core import methods
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.events import PipelineFinished
from ssl_studio.core.pipeline import open_run, run_pipeline

TOY = textwrap.dedent('''
    """Mean-colour prediction: a toy pretext task, the whole of a method in one file."""
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F
    from torch import nn

    from ssl_studio.core.methods.base import Method, MethodParams
    from ssl_studio.core.schema import setting


    @dataclass(frozen=True)
    class ToyParams(MethodParams):
        weight: float = setting(1.0, "Loss weight", "Scales the loss.", minimum=0.1, maximum=10.0)


    class MeanColour(Method):
        name = "toy"
        title = "Mean colour (toy)"
        Params = ToyParams

        def __init__(self, backbone, recipe, view_size=None, params=None, num_classes=None):
            super().__init__(backbone, recipe, view_size, params)
            self.head = nn.Linear(backbone.feature_dim, 3)

        @torch.no_grad()
        def make_views(self, images, labels, generator):
            return self.augment(images, generator), images.float().mean(dim=(2, 3)) / 255

        def forward(self, views, targets):
            features = self.backbone(views)
            return self.params.weight * F.mse_loss(self.head(features), targets), features
''')


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    folder = tmp_path / "more_methods"
    folder.mkdir()
    (folder / "toy.py").write_text(TOY, encoding="utf-8")
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(folder)])
    methods.discover()
    yield "toy"
    methods.unregister("toy")
    sys.modules.pop("ssl_studio.core.methods.toy", None)


def test_a_new_method_file_is_a_setting_a_flag_and_a_training(toy_method, tiny_folder, tmp_path):
    assert "toy" in methods.method_names(self_supervised=True)
    config = TrainConfig(method="toy")
    assert config.params.weight == 1.0
    assert TrainConfig.from_dict(config.to_dict()) == config

    args = cli._parser().parse_args(["run", str(tiny_folder), "--out", "x", "--method", "toy", "--weight", "2"])
    assert cli.config_from_args(args).params.weight == 2.0
    args = cli._parser().parse_args(["run", str(tiny_folder), "--out", "x", "--weight", "2"])
    with pytest.raises(ValueError, match="--weight does not apply to --method simclr"):
        cli.config_from_args(args)

    # The command line's own pipeline (its progress bars leave a thread behind, which these tests refuse).
    args = cli._parser().parse_args(["run", str(tiny_folder), "--out", "x", "--method", "toy", "--epochs", "1",
                                     "--batch-size", "8", "--device", "cpu"])
    events = list(run_pipeline(tiny_folder, tmp_path / "run", cli.config_from_args(args), use_umap=False,
                                skip=("transfer",)))
    assert isinstance(events[-1], PipelineFinished)
    assert open_run(tmp_path / "run").config == TrainConfig(method="toy", epochs=1, time_budget=None, batch_size=8,
                                                             device="cpu")


def test_the_app_offers_a_new_method_with_its_own_settings(toy_method, window, drive, tiny_folder):
    drive.open_folder(window, tiny_folder)
    page = window.train
    page.method.setCurrentIndex(page.method.findData("toy"))
    assert page.method_box.title() == "Mean colour (toy) settings"
    page.control("weight").setValue(3.0)
    drive.tiny_training(window)
    assert page.config().method == "toy" and page.config().params.weight == 3.0
    window.go("augment")
    # The Augment page previews the toy's own make_views: one view per image.
    assert not window.augment.view_image(0, 1).isNull()
    assert len(window.augment._cells[0]) == 3  # the image, one view, the caption
