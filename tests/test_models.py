"""UNet shapes and size, classifier construction from local weights, loss values, safe checkpoints."""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os

import pytest
import torch
import torchvision
from torch import nn

from derc.checkpoints import MAGIC, load_state, load_torch_file, load_weights, save_state, save_weights
from derc.errors import ModelFolderError
from derc.losses import DiceFocalLoss, dice_loss, focal_loss
from derc.models import UNet, build_classifier, unet
from derc.models.unet import DoubleConv

torch.set_num_threads(1)


def _double_conv_params(cin: int, cout: int) -> int:
    return 9 * cin * cout + 9 * cout * cout + 4 * cout  # two bias-free 3x3 convs + two BatchNorms


def _expected_unet_params(in_ch: int, width: int, depth: int) -> int:
    widths = [width * 2**i for i in range(depth + 1)]
    total = _double_conv_params(in_ch, widths[0])
    total += sum(_double_conv_params(widths[i], widths[i + 1]) for i in range(depth))
    for i in range(depth):
        big, small = widths[i + 1], widths[i]
        total += 4 * big * (big // 2) + big // 2  # 2x2 transposed conv with bias
        total += _double_conv_params(big // 2 + small, small)
    return total + widths[0] + 1  # 1x1 head with bias


def test_unet_parameter_count_matches_formula() -> None:
    model = unet(width=64, depth=4)
    count = sum(p.numel() for p in model.parameters())
    assert count == _expected_unet_params(3, 64, 4) == 31_037_633
    widths = [m[0].out_channels for m in model.modules() if isinstance(m, DoubleConv)][:5]
    assert widths == [64, 128, 256, 512, 1024]
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))


@pytest.mark.parametrize(("height", "width"), [(896, 1152), (100, 130), (17, 5)])
def test_unet_output_shape_any_size(height: int, width: int) -> None:
    model = unet(width=4, depth=4).eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, height, width))
    assert logits.shape == (1, 1, height, width)
    probs = model.predict(torch.rand(2, 3, height, width))
    assert probs.shape == (2, 1, height, width)
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0


def test_unet_predict_is_sigmoid_of_logits() -> None:
    model = UNet(3, 1, width=2, depth=2).eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        assert torch.allclose(model.predict(x), torch.sigmoid(model(x)))


def test_classifier_averages_rgb_kernel_from_local_weights(tmp_path) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    weights = tmp_path / "resnet18.pth"
    torch.save(reference, weights)
    model = build_classifier("resnet18", num_classes=11, in_channels=1, weights_path=str(weights))
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert torch.allclose(model.conv1.weight, reference["conv1.weight"].mean(dim=1, keepdim=True))
    assert torch.equal(model.layer1[0].conv1.weight, reference["layer1.0.conv1.weight"])
    assert model.fc.out_features == 11
    assert model.eval()(torch.rand(2, 1, 64, 80)).shape == (2, 11)


def test_classifier_weight_file_errors(tmp_path) -> None:
    with pytest.raises(ModelFolderError, match="missing"):
        build_classifier("resnet18", weights_path=str(tmp_path / "nope.pth"))
    wrong = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(ModelFolderError, match=r"vgg\.pth"):
        build_classifier("resnet18", weights_path=str(wrong))
    with pytest.raises(ValueError, match="unknown classifier"):
        build_classifier("resnet19")


def test_classifier_random_weights_are_logged(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="derc"):
        model = build_classifier("vgg11", num_classes=11, in_channels=1)
    assert "random" in caplog.text
    assert model.features[0].in_channels == 1
    assert model.classifier[6].out_features == 11


def test_vit_needs_image_size_and_takes_non_square_input() -> None:
    with pytest.raises(ValueError, match="image_size"):
        build_classifier("vit_b_16")
    model = build_classifier("vit_b_16", image_size=(64, 96)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 64, 96)).shape == (1, 11)


def test_losses_match_hand_computation() -> None:
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    p = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1)), 1 / (1 + math.exp(-3))]
    t = [1, 0, 0, 1]
    bce = [-math.log(pi) if ti else -math.log(1 - pi) for pi, ti in zip(p, t)]
    focal = sum(0.25 * (1 - math.exp(-b)) ** 2 * b for b in bce) / 4
    dice = 1 - (2 * (p[0] + p[3]) + 1) / (sum(p) + 2 + 1)
    assert focal_loss(logits, target, alpha=0.25, gamma=2.0).item() == pytest.approx(focal, rel=1e-6)
    assert dice_loss(logits, target, eta=1.0).item() == pytest.approx(dice, rel=1e-6)
    assert DiceFocalLoss()(logits, target).item() == pytest.approx(dice + 10 * focal, rel=1e-6)


def test_dice_is_per_image_mean() -> None:
    logits = torch.tensor([[[[10.0]]], [[[-10.0]]]])
    target = torch.tensor([[[[1.0]]], [[[1.0]]]])
    per_image = [dice_loss(logits[i : i + 1], target[i : i + 1], eta=1.0).item() for i in range(2)]
    assert dice_loss(logits, target, eta=1.0).item() == pytest.approx(sum(per_image) / 2, rel=1e-6)


def test_loss_is_float32_under_autocast() -> None:
    logits = torch.randn(1, 1, 8, 8)
    target = (torch.rand(1, 1, 8, 8) > 0.5).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = DiceFocalLoss()(logits.bfloat16(), target)
    assert loss.dtype == torch.float32


def test_weights_round_trip_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(1)
    model = unet(width=4, depth=2).eval()
    path = tmp_path / "unet.pt"
    save_weights(path, model)
    torch.manual_seed(2)
    other = unet(width=4, depth=2).eval()
    load_weights(path, other, what="denoiser weights")
    x = torch.rand(1, 3, 30, 40)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


def test_weights_of_another_model_are_refused(tmp_path) -> None:
    path = tmp_path / "unet.pt"
    save_weights(path, unet(width=4, depth=2))
    with pytest.raises(ModelFolderError, match=r"unet\.pt.*shape mismatch"):
        load_weights(path, unet(width=8, depth=2), what="denoiser weights")
    with pytest.raises(ModelFolderError, match="missing"):
        load_weights(path, unet(width=4, depth=3), what="denoiser weights")


def test_truncated_or_tampered_state_is_refused(tmp_path) -> None:
    path = tmp_path / "state.pt"
    save_state(path, {"w": torch.arange(1000, dtype=torch.float32), "epoch": 3})
    assert load_state(path, what="state")["epoch"] == 3
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match=r"cut\.pt"):
        load_state(tmp_path / "cut.pt", what="state")
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.pt").write_bytes(bytes(tampered))
    with pytest.raises(ModelFolderError, match=r"bad\.pt.*checksum"):
        load_state(tmp_path / "bad.pt", what="state")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelFolderError, match="header"):
        load_state(tmp_path / "empty.pt", what="state")
    with pytest.raises(ModelFolderError, match="missing"):
        load_state(tmp_path / "absent.pt", what="state")


class _Payload:
    """Unpickling this would create a folder: code execution that weights_only loading must refuse."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_pickle_with_code_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"x": _Payload(str(marker))}, buffer)
    payload = buffer.getvalue()
    forged = tmp_path / "forged.pt"  # a valid header and checksum around a malicious pickle
    forged.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(ModelFolderError, match=r"forged\.pt"):
        load_state(forged, what="state")
    plain = tmp_path / "plain.pth"
    plain.write_bytes(payload)
    with pytest.raises(ModelFolderError, match=r"plain\.pth"):
        load_torch_file(plain, what="weights")
    assert not marker.exists()


def test_save_state_rejects_unloadable_values(tmp_path) -> None:
    import numpy as np

    with pytest.raises(TypeError, match="ndarray"):
        save_state(tmp_path / "x.pt", {"a": np.zeros(3)})


def _with_running_stats(model: nn.Module) -> nn.Module:
    """Eval mode with batch-norm statistics and affine parameters away from their initial values."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["unet", "resnet18", "signal"])
def test_fusing_batch_norms_keeps_outputs_and_leaves_none(name: str) -> None:
    from derc.inference import fuse_conv_bn
    from derc.models.signal import signal_classifier

    torch.manual_seed(0)
    model, x = {  # built only for the case at hand
        "unet": lambda: (unet(width=4, depth=2), torch.rand(2, 3, 32, 48)),
        "resnet18": lambda: (build_classifier("resnet18", in_channels=1, num_classes=11), torch.rand(2, 1, 64, 80)),
        "signal": lambda: (signal_classifier(widths=(8, 16)), torch.randn(2, 24, 100)),
    }[name]()
    model = _with_running_stats(model)
    with torch.inference_mode():
        before = model(x)
        fused = fuse_conv_bn(model)
        after = fused(x)
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in fused.modules())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_fusing_needs_eval_mode() -> None:
    from derc.inference import fuse_conv_bn

    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn(unet(width=4, depth=1).train())
