import keras
import numpy as np
import pytest

from recaptcha_tf.models import build_classifier
from recaptcha_tf.models.precision import precision_policy, resolve_precision


def test_explicit_precisions_pass_through_and_bad_ones_fail():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    assert resolve_precision("auto") in ("float32", "mixed_bfloat16", "mixed_float16")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8")


def test_policy_is_scoped_and_outputs_stay_float32(tmp_path):
    before = keras.mixed_precision.global_policy().name
    with precision_policy("mixed_bfloat16") as name:
        assert name == "mixed_bfloat16"
        model = build_classifier("cnn", ["a", "b"], image_size=(16, 16), conv_layers=2, filters=4)
    assert keras.mixed_precision.global_policy().name == before
    assert model.get_layer("cnn").get_layer("conv1_1").compute_dtype == "bfloat16"
    out = model(np.zeros((1, 20, 20, 3), np.float32))
    assert out.dtype == "float32"
    np.testing.assert_allclose(np.asarray(out).sum(), 1.0, rtol=1e-5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(np.zeros((1, 20, 20, 3)), verbose=0), np.asarray(out), atol=1e-6)


def test_auto_trains_depthwise_backbones_in_float32_on_a_cpu(monkeypatch):
    from recaptcha_tf.models import precision as precision
    from recaptcha_tf.models.registry import model_cpu_bfloat16

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)  # a CPU with bfloat16 instructions
    assert resolve_precision("auto") == "mixed_bfloat16"
    assert resolve_precision("auto", cpu_bfloat16=False) == "float32"
    assert resolve_precision("mixed_bfloat16", cpu_bfloat16=False) == "mixed_bfloat16"  # asked for: kept
    assert not model_cpu_bfloat16("efficientnet-lite0") and not model_cpu_bfloat16("mobilenetv2")
    assert model_cpu_bfloat16("cnn") and model_cpu_bfloat16("crnn")
