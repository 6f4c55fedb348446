import numpy as np
import pytest

from recaptcha_tf.evaluation.metrics import character_error_rate, classification_report, text_report, top_k_accuracy


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


def test_one_macro_f1_for_reports_and_the_abstention_threshold():
    from recaptcha_tf.evaluation.calibration import choose_min_confidence
    from recaptcha_tf.evaluation.metrics import macro_f1

    labels = [0, 0, 1, 1]
    predicted = [0, 2, 1, 1]  # class 2 is predicted once and never present
    # per present class: F1(0) = 2/3 (1 right, 1 missed), F1(1) = 1; absent class 2 is not averaged in
    assert macro_f1(predicted, labels) == pytest.approx((2 / 3 + 1) / 2)
    probs = np.eye(3)[predicted] * 0.9 + 0.1 / 3
    report = classification_report(probs, labels, ["a", "b", "c"])
    assert report["macro_f1"] == pytest.approx(macro_f1(predicted, labels))
    chosen = choose_min_confidence(probs, labels, ["a", "b", "other"])  # no threshold: the plain arg-max's macro-F1
    assert chosen["macro_f1_without"] == pytest.approx(macro_f1(predicted, labels))


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


def test_averaged_ctc_frames_read_what_the_models_agree_on():
    from recaptcha_tf.inference.decoding import average_text_outputs, decode_text_outputs

    def logits(frames):  # one image, frames of probabilities over (blank, a, b)
        return np.log(np.asarray([frames], dtype=np.float64))

    # model 1 reads "ab"; model 2 reads "a" (its three "a" frames merge into one); the averaged frames keep model 1's
    # blank in the middle and its "b" at the end
    one = logits([[0.1, 0.8, 0.1], [0.6, 0.1, 0.3], [0.1, 0.1, 0.8]])
    two = logits([[0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.1, 0.7, 0.2]])
    assert decode_text_outputs(one, "ab", "ctc")[0][0] == "ab"
    assert decode_text_outputs(two, "ab", "ctc")[0][0] == "a"
    averaged = average_text_outputs([one, two], "ctc")
    np.testing.assert_allclose(np.exp(averaged).sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.exp(averaged)[0, 1], [0.4, 0.3, 0.3], atol=1e-9)
    assert decode_text_outputs(averaged, "ab", "ctc")[0][0] == "ab"
    # multi-head probabilities average position by position
    heads = average_text_outputs([np.array([[[0.0, 1.0, 0.0]]]), np.array([[[0.0, 0.0, 1.0]]])], "multihead")
    np.testing.assert_allclose(heads, [[[0.0, 0.5, 0.5]]])
    with pytest.raises(ValueError, match="shapes"):
        average_text_outputs([one, one[:, :2]], "ctc")


def test_a_vote_takes_the_majority_then_the_most_confident_reading():
    from recaptcha_tf.inference.decoding import vote_texts

    model_a = [("abc", [0.9, 0.9, 0.9]), ("xy", [0.5, 0.5])]
    model_b = [("abd", [0.99, 0.99, 0.99]), ("xz", [0.9, 0.9])]
    model_c = [("abc", [0.6, 0.6, 0.6]), ("x", [0.99])]
    # image 1: two of three read "abc" and outvote the more confident "abd"; its confidences are the surer reader's
    # image 2: three texts, one vote each: the most confident reading ("x", 0.99) wins
    assert vote_texts([model_a, model_b, model_c]) == [("abc", [0.9, 0.9, 0.9]), ("x", [0.99])]
    # two models that disagree: the more confident one
    assert vote_texts([model_a, model_b])[0] == ("abd", [0.99, 0.99, 0.99])
