import numpy as np
import pytest

from recaptcha_tf.evaluation import character_error_rate, classification_report, text_report, top_k_accuracy


def test_classification_report_on_a_hand_built_case():
    # true:  0 0 0 1 1 2 ; predicted (argmax): 0 0 1 1 2 2
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.6, 0.3, 0.1],
            [0.3, 0.6, 0.1],
            [0.1, 0.7, 0.2],
            [0.1, 0.4, 0.5],
            [0.2, 0.1, 0.7],
        ]
    )
    labels = [0, 0, 0, 1, 1, 2]
    r = classification_report(probs, labels, ["a", "b", "c"])
    assert r["n"] == 6
    assert r["top1"] == pytest.approx(4 / 6)
    # top-3 over 3 classes is always 1; top-2 here misses nothing either
    assert r["top3"] == 1.0
    # recalls: a 2/3, b 1/2, c 1/1 -> balanced accuracy 13/18
    assert r["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # precisions: a 2/2, b 1/2, c 1/2; F1: a 0.8, b 0.5, c 2/3
    assert r["per_class"]["a"]["f1"] == pytest.approx(0.8)
    assert r["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert r["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r["per_class"]["a"]["support"] == 3
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert r["class_names"] == ["a", "b", "c"]


def test_top_k():
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4]])
    assert top_k_accuracy(probs, [2, 0], 1) == 0.0
    assert top_k_accuracy(probs, [2, 0], 3) == 0.5
    assert top_k_accuracy(probs, [2, 1], 3) == 1.0


def test_cer_on_hand_computed_cases():
    assert character_error_rate(["abcde"], ["abcde"]) == 0.0
    assert character_error_rate(["abcde"], ["abXde"]) == pytest.approx(1 / 5)  # substitution
    assert character_error_rate(["abcde"], ["abde"]) == pytest.approx(1 / 5)  # deletion
    assert character_error_rate(["abc"], ["abcdd"]) == pytest.approx(2 / 3)  # two insertions
    # corpus CER sums edits and reference lengths: (1 + 3) / (5 + 3)
    assert character_error_rate(["abcde", "xyz"], ["abcdf", ""]) == pytest.approx(4 / 8)


def test_text_report_ranks_worst_examples():
    refs = ["aaaa", "bbbb", "cccc"]
    hyps = ["aaaa", "bxbb", "zzzz"]
    r = text_report(refs, hyps, [[0.9] * 4, [0.5] * 4, [0.2] * 4], ["f1", "f2", "f3"])
    assert r["n"] == 3 and r["exact_match"] == pytest.approx(1 / 3)
    assert r["cer"] == pytest.approx(5 / 12)
    assert [w["name"] for w in r["worst"]] == ["f3", "f2", "f1"]
    assert r["worst"][0]["truth"] == "cccc" and r["worst"][0]["prediction"] == "zzzz"
    assert r["confusions"]["b->x"] == 1
