"""``recaptcha-tf models``: the model registry, by task: name, head kind, and the transfer recipe of pretrained ones."""

from __future__ import annotations

import json

from recaptcha_tf.cli.options import _Formatter

NAME = "models"
TENSORFLOW = True


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, formatter_class=_Formatter, help="list the models `train --model` takes")
    p.add_argument("--task", default=None, help="only the models of this task (tiles, chars, text)")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    return p


def check(args) -> None:
    from recaptcha_tf.tasks import get_task

    if args.task is not None:
        get_task(args.task)  # an unknown task is one error line before TensorFlow starts


def run(args) -> int:
    from recaptcha_tf.models.registry import list_models, model_head, pretrained_recipe
    from recaptcha_tf.tasks import get_task, task_names

    names = get_task(args.task).models() if args.task else list_models()
    for name in names:
        tasks = [task for task in task_names() if model_head(name) in get_task(task).heads]
        recipe = pretrained_recipe(name)
        row = {"model": name, "head": model_head(name), "tasks": tasks, "pretrained_recipe": recipe}
        if args.json:
            print(json.dumps(row))
        else:
            size = "x".join(map(str, recipe["image_size"])) if recipe.get("image_size") else "-"
            print(f"{name:<20} {model_head(name):<10} {','.join(tasks):<12} pretrained input {size}")
    return 0
