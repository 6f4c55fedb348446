"""``recaptcha-tf models``: the model registry by task (name, head kind, transfer recipe), then the shipped models.

The registry's names are what ``train``/``tune --model`` take; the shipped models' names (trained models inside the
package, :mod:`recaptcha_tf.models.shipped`) are what ``evaluate``/``predict``/``export``/``serve --model`` take.
"""

from __future__ import annotations

import json

from recaptcha_tf.cli.options import _Formatter

NAME = "models"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(
        NAME,
        formatter_class=_Formatter,
        help="list the architectures `train --model` takes and the shipped models `predict --model` takes",
    )
    p.add_argument("--task", default=None, help="only the models of this task (tiles, chars, text)")
    p.add_argument("--json", action="store_true", help='print JSON lines, each with "section": "registry" or "shipped"')
    return p


def check(args) -> None:
    from recaptcha_tf.tasks import get_task
    from recaptcha_tf.utils.shipped import shipped_models

    if args.task is not None:
        get_task(args.task)  # an unknown task is one error line before TensorFlow starts
    shipped_models()  # so is a damaged manifest


def run(args) -> int:
    from recaptcha_tf.models.registry import list_models, model_head, pretrained_recipe
    from recaptcha_tf.tasks import get_task, task_names
    from recaptcha_tf.utils.shipped import shipped_models

    if not args.json:
        print("registry (train/tune --model NAME):")
    names = get_task(args.task).models() if args.task else list_models()
    for name in names:
        tasks = [task for task in task_names() if model_head(name) in get_task(task).heads]
        recipe = pretrained_recipe(name)
        row = {
            "section": "registry",
            "model": name,
            "head": model_head(name),
            "tasks": tasks,
            "pretrained_recipe": recipe,
        }
        if args.json:
            print(json.dumps(row))
        else:
            size = "x".join(map(str, recipe["image_size"])) if recipe.get("image_size") else "-"
            print(f"  {name:<20} {model_head(name):<10} {','.join(tasks):<12} pretrained input {size}")
    shipped = [m for m in shipped_models().values() if args.task in (None, m.task)]
    if not args.json:
        print("shipped (evaluate/predict/export/serve --model NAME):" + ("" if shipped else " none yet"))
    for m in shipped:
        if args.json:
            row = {"section": "shipped", "model": m.name, "task": m.task, "version": m.version}
            print(json.dumps({**row, "description": m.description, "file": str(m.path), "card": str(m.card_path)}))
        else:
            print(f"  {m.name:<20} {m.task:<10} v{m.version:<11} {m.description}")
    return 0
