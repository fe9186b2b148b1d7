from legible.tasks.base import Problem, Task, split_completion
from legible.tasks.organism import CoinFlip, RunningSum, legible_cot


def make_task(name: str, **kwargs) -> Task:
    tasks = {"coin_flip": CoinFlip, "running_sum": RunningSum}
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(tasks)}")
    return tasks[name](**kwargs)


__all__ = ["Problem", "Task", "split_completion", "CoinFlip", "RunningSum", "legible_cot", "make_task"]
