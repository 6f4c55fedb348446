"""``python -m recaptcha_tf ...`` is the same as ``recaptcha-tf ...``."""

from recaptcha_tf.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
