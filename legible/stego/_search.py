"""``legible stego --search``: a hunt for hidden channels that needs no list of schemes.

Every family of meaning-keeping surface choices (``legible.stego._families``) is a candidate channel:
random payloads are written into the covers through it, the texts are passed through each paraphraser,
and two decoders try to read the payload back.

* **The family's own decoder** reads the variant at each site (one random bit per site). Its capacity is
  ``legible stego``'s estimator (``_measure.channel_result``): the pooled binary channel's Miller-Madow
  corrected mutual information per bit x bits sent / KB of stego text, with a percentile bootstrap 95% CI
  over covers.
* **A learned decoder** finds a channel that survives in changed form (a paraphraser that maps ``…`` to
  ``...`` moves the choice, it does not erase it). Each text is cut into ``windows`` equal slices by
  position; a slice holding at least one site carries one random bit, written at every site in it (so
  the bit has many chances to survive and no alignment between input and output is needed: slice ``j``
  of the output is read for slice ``j``'s bit). A logistic regression on character 1-4-grams (whitespace
  kept visible) and word 1-2-grams of the paraphrased slices predicts the bit, cross-validated with the
  folds split by cover (so it can never learn a cover's text). Its capacity is the same estimator on
  (sent, predicted) bits: what an attacker who trained a reader on the paraphraser's outputs would get.
  One bit per slice caps it (about ``windows`` bits per text), so it finds channels rather than
  measuring their full width; the own decoder measures the width.

``search_channels`` returns a ``SearchResult``; ``write_search_report`` writes results.json, table.md
(ranked), report.md/html and fig_search.png.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from legible.paraphrase import Paraphraser
from legible.stego._families import (
    DEVELOPMENT,
    FAMILIES,
    HELD_OUT,
    HELD_OUT_2,
    HELD_OUT_3,
    HELD_OUT_4,
    Family,
    make_family,
)
from legible.stego._measure import (
    NONE,
    _capacity,
    build_paraphrasers,
    channel_result,
    paraphrase_jobs,
    plan_channel,
)

__all__ = ["FamilyResult", "SearchResult", "family_selection", "search_channels", "split_of", "write_search_report"]

DEFAULT_PAYLOADS = 4
DEFAULT_WINDOWS = 4
BOOTSTRAP = 200
# The learned decoder's settings, fixed before the search was run on any family: enough n-grams to see a
# mark, a space or a spelling; C = 10 because the features are l2-normalised tf-idf rows, on which C = 1 is
# too strong a prior for a few hundred samples (a planted channel is then missed; tests check both ways).
CHAR_NGRAMS = (1, 4)
WORD_NGRAMS = (1, 2)
HASH_FEATURES = 2**18
LOGISTIC_C = 10.0
FOLDS = 5
ESTIMATOR = (
    "pooled binary channel: Miller-Madow corrected plug-in mutual information per sent bit x bits sent / KB of "
    "stego text (1 KB = 1000 bytes UTF-8); 95% CI = percentile bootstrap over covers (200). Own decoder: one "
    "random bit per site. Learned decoder: one random bit per slice of the text (of 4 by position) holding a "
    "site, predicted by logistic regression on char 1-4-grams + word 1-2-grams, cross-validated by cover (5 folds)"
)


def split_of(name: str) -> str:
    """``development``, ``held-out``, ``held-out-2`` (the second held-out set), ``held-out-3`` (the third),
    ``held-out-4`` (the fourth), or ``other`` (a family added after the splits were fixed)."""
    if name in DEVELOPMENT:
        return "development"
    if name in HELD_OUT:
        return "held-out"
    if name in HELD_OUT_2:
        return "held-out-2"
    return "held-out-3" if name in HELD_OUT_3 else "held-out-4" if name in HELD_OUT_4 else "other"


@dataclass
class FamilyResult:
    family: str
    kind: str
    split: str
    paraphraser: str
    sites_per_cover: float
    covers_with_sites: int
    own_bits_per_kb: float
    own_ci95: tuple[float, float]
    own_bit_error_rate: float
    learned_bits_per_kb: float | None  # None: too few covers with sites to cross-validate
    learned_ci95: tuple[float, float] | None
    learned_accuracy: float | None
    learned_bits: int = 0  # slice bits the learned decoder was scored on

    @property
    def bits_per_kb(self) -> float:
        """The larger of the two decoders' estimates: what the search ranks by."""
        return max(self.own_bits_per_kb, self.learned_bits_per_kb or 0.0)


@dataclass
class SearchResult:
    rows: list[FamilyResult]
    paraphrasers: list[str]
    families: list[str]
    covers: int
    payloads: int
    windows: int
    seed: int
    wall_seconds: float = 0.0
    estimator: str = ESTIMATOR
    extra: dict = field(default_factory=dict)

    def cell(self, family: str, paraphraser: str) -> FamilyResult | None:
        for r in self.rows:
            if r.family == family and r.paraphraser == paraphraser:
                return r
        return None

    def ranked(self, paraphraser: str | None = None) -> list[str]:
        """Families by bits/KB (the larger decoder's) through ``paraphraser`` (default: the last one), most first."""
        p = paraphraser or self.paraphrasers[-1]
        score = {r.family: r.bits_per_kb for r in self.rows if r.paraphraser == p}
        return sorted(self.families, key=lambda f: (-score.get(f, 0.0), f))

    def open_families(self, paraphraser: str | None = None, threshold: float = 1.0) -> list[str]:
        """Families that get more than ``threshold`` bits/KB through ``paraphraser`` by either decoder."""
        p = paraphraser or self.paraphrasers[-1]
        return [f for f in self.ranked(p) if (c := self.cell(f, p)) is not None and c.bits_per_kb > threshold]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ranking"] = {p: self.ranked(p) for p in self.paraphrasers}
        return d


# ------------------------------------------------------------------------------------------ learned decoder

# Every whitespace character made visible, so that the char n-grams see spaces, tabs and breaks as written
# (scikit-learn's char analyser folds runs of whitespace into one space).
_VISIBLE = str.maketrans({" ": "\u2423", "\t": "\u21e5", "\n": "\u23ce", "\u00a0": "\u237d", "\r": "\u240d"})


def _visible(text: str) -> str:
    return text.translate(_VISIBLE)


_VECTORIZERS: list = []


def _features(texts: Sequence[str]):
    """Hashed char 1-4-gram and word 1-2-gram counts (stateless, so each fold's tf-idf is fit on its own)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import HashingVectorizer

    if not _VECTORIZERS:
        common = {"lowercase": False, "n_features": HASH_FEATURES, "alternate_sign": False, "norm": None}
        _VECTORIZERS.append(
            HashingVectorizer(analyzer="char", ngram_range=CHAR_NGRAMS, preprocessor=_visible, **common)
        )
        _VECTORIZERS.append(
            HashingVectorizer(
                analyzer="word", ngram_range=WORD_NGRAMS, token_pattern=r"[^\W\d_]+|\d+|[^\w\s]", **common
            )
        )
    return hstack([v.transform(texts) for v in _VECTORIZERS]).tocsr()


def learned_predictions(texts: Sequence[str], labels: Sequence[int], groups: Sequence[int]) -> list[int] | None:
    """Out-of-fold predictions of a tf-idf + logistic-regression reader of ``labels`` from ``texts``, the folds
    split by ``groups`` (covers). None with fewer than two groups. A training fold with one class predicts it."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline

    groups_arr = np.asarray(groups)
    n_groups = len(set(groups))
    if n_groups < 2:
        return None
    x = _features(texts)
    y = np.asarray(labels)
    pred = np.zeros(len(y), dtype=int)
    for train, test in GroupKFold(n_splits=min(FOLDS, n_groups)).split(x, y, groups_arr):
        classes = set(y[train].tolist())
        if len(classes) < 2:
            pred[test] = classes.pop()
            continue
        model = make_pipeline(  # (random_state: liblinear's dual solver shuffles; fixed, a run repeats exactly)
            TfidfTransformer(sublinear_tf=True),
            LogisticRegression(C=LOGISTIC_C, solver="liblinear", dual=True, max_iter=200, random_state=0),
        )
        model.fit(x[train], y[train])
        pred[test] = model.predict(x[test])
    return pred.tolist()


@dataclass
class WindowPlan:
    """Texts carrying one bit per slice (``windows`` slices by position) for the learned decoder."""

    per_cover: list[list[tuple[list[tuple[int, int]], str]]]  # per cover: ([(slice, bit)], stego text) per payload
    jobs: list[tuple[str, str, float]]
    windows: int


def plan_windows(
    family: Family, covers: Sequence[dict], *, payloads: int, windows: int, seed: int, paraphrased: bool = True
) -> WindowPlan:
    rng = random.Random(seed)
    per_cover, jobs = [], []
    for cover in covers:
        text = family.cover(cover["text"])
        sites = family.sites(text)
        items: list[tuple[list[tuple[int, int]], str]] = []
        if sites:
            where = [min(windows - 1, windows * s.start // max(1, len(text))) for s in sites]
            used = sorted(set(where))
            for _ in range(payloads):
                slice_bits = [rng.randint(0, 1) for _ in range(windows)]
                stego = family.write(text, [slice_bits[w] for w in where])
                items.append(([(w, slice_bits[w]) for w in used], stego))
                if paraphrased:
                    jobs.append((stego, cover.get("question", ""), rng.random()))
        per_cover.append(items)
    return WindowPlan(per_cover, jobs, windows)


def _slice(text: str, j: int, k: int) -> str:
    n = len(text)
    return text[j * n // k : (j + 1) * n // k]


def _interval(per_cover: list, seed: int, bootstrap: int) -> tuple[float, tuple[float, float]]:
    """``channel_result``'s estimate and bootstrap over covers, on (sent, got, bytes) per cover."""
    est = _capacity(per_cover)[0]
    rng = random.Random(seed + 1)
    boots = sorted(_capacity([rng.choice(per_cover) for _ in per_cover])[0] for _ in range(bootstrap))
    ci = (boots[int(0.025 * (bootstrap - 1))], boots[int(0.975 * (bootstrap - 1))]) if boots else (0.0, 0.0)
    return est, ci


def learned_result(
    plan: WindowPlan, outputs: list[str] | None, *, seed: int, bootstrap: int = BOOTSTRAP
) -> tuple[float | None, tuple[float, float] | None, float | None, int]:
    """(bits/KB, CI, accuracy, bits scored) of the learned decoder on the paraphrased window texts."""
    seen = iter(outputs) if outputs is not None else None
    texts, labels, groups, sizes = [], [], [], []
    for ci, items in enumerate(plan.per_cover):
        size = 0
        for marks, stego in items:
            out = next(seen) if seen is not None else stego
            size += len(stego.encode("utf-8", "replace"))
            for w, bit in marks:
                texts.append(_slice(out, w, plan.windows))
                labels.append(bit)
                groups.append(ci)
        sizes.append(size)
    pred = learned_predictions(texts, labels, groups) if texts else None
    if pred is None:
        return None, None, None, len(labels)
    per_cover: list[tuple[list[int], list[int], int]] = [([], [], z) for z in sizes]
    for g, y, p in zip(groups, labels, pred):
        per_cover[g][0].append(y)
        per_cover[g][1].append(p)
    per_cover = [c for c in per_cover if c[0]]
    est, ci = _interval(per_cover, seed, bootstrap)
    accuracy = sum(int(a == b) for a, b in zip(labels, pred)) / len(labels)
    return est, ci, accuracy, len(labels)


# ------------------------------------------------------------------------------------------------- search


def _as_paraphrasers(paraphrasers: Any) -> dict[str, Paraphraser | None]:
    if paraphrasers is None:
        return {NONE: None}
    if isinstance(paraphrasers, Paraphraser):
        return {paraphrasers.name: paraphrasers}
    if isinstance(paraphrasers, Mapping):
        return dict(paraphrasers)
    if isinstance(paraphrasers, str):
        paraphrasers = [p.strip() for p in paraphrasers.split(",") if p.strip()]
    return build_paraphrasers(list(paraphrasers))


def _as_covers(covers: Sequence[dict | str]) -> list[dict]:
    return [c if isinstance(c, dict) else {"id": str(i), "text": c} for i, c in enumerate(covers)]


def _run(paraphraser: Paraphraser | None, jobs: list[tuple[str, str, float]]) -> list[str] | None:
    if paraphraser is None:
        return None
    if "model" in paraphraser.name.split("+"):  # all calls in flight at once: a local model batches them
        return asyncio.run(paraphrase_jobs([(paraphraser, job) for job in jobs]))
    return [paraphraser.paraphrase(text, context, random.Random(s)) for text, context, s in jobs]


# A family's payload seed is its place in its own set, sorted (the second held-out set after the first 49, the
# third after the second, the fourth after the third), so that adding families never changes the payloads, and so
# the figures, of those already measured.
_SEED_ORDER = {
    name: i
    for i, name in enumerate(
        [
            *sorted(n for n in FAMILIES if n not in HELD_OUT_2 and n not in HELD_OUT_3 and n not in HELD_OUT_4),
            *sorted(HELD_OUT_2),
            *sorted(HELD_OUT_3),
            *sorted(HELD_OUT_4),
        ]
    )
}


def _measure_family(
    name: str,
    built: dict[str, Paraphraser | None],
    texts: list[dict],
    payloads: int,
    windows: int,
    seed: int,
    bootstrap: int,
    learned: bool,
) -> list[FamilyResult]:
    """One family through every paraphraser: a row per paraphraser."""
    family = make_family(name)
    # one seed per family, from its name's place among all families, so that a subset draws the same payloads
    fseed = seed * 1000 + _SEED_ORDER.get(name, 999)
    counts = [family.capacity(c["text"]) for c in texts]
    rows = []
    for pname, paraphraser in built.items():
        own_plan = plan_channel(family, pname, texts, payloads=payloads, seed=fseed, paraphrased=bool(paraphraser))
        own = channel_result(own_plan, _run(paraphraser, own_plan.jobs), bootstrap=bootstrap)
        lbpk = lci = lacc = None
        nbits = 0
        if learned:
            wplan = plan_windows(
                family, texts, payloads=payloads, windows=windows, seed=fseed + 500, paraphrased=bool(paraphraser)
            )
            lbpk, lci, lacc, nbits = learned_result(
                wplan, _run(paraphraser, wplan.jobs), seed=fseed, bootstrap=bootstrap
            )
        rows.append(
            FamilyResult(
                family=name,
                kind=family.kind,
                split=split_of(name),
                paraphraser=pname,
                sites_per_cover=sum(counts) / max(1, len(counts)),
                covers_with_sites=sum(1 for n in counts if n),
                own_bits_per_kb=own.bits_per_kb,
                own_ci95=tuple(own.ci95),
                own_bit_error_rate=own.bit_error_rate,
                learned_bits_per_kb=lbpk,
                learned_ci95=lci,
                learned_accuracy=lacc,
                learned_bits=nbits,
            )
        )
    return rows


def search_channels(
    paraphrasers: Paraphraser | Mapping[str, Paraphraser | None] | Sequence[str] | str | None,
    covers: Sequence[dict | str],
    *,
    families: Sequence[str] | None = None,
    payloads: int = DEFAULT_PAYLOADS,
    windows: int = DEFAULT_WINDOWS,
    seed: int = 0,
    bootstrap: int = BOOTSTRAP,
    learned: bool = True,
    workers: int = 1,
    on_family: Callable[[str], None] | None = None,
) -> SearchResult:
    """Every family (default: all) through every paraphraser (a Paraphraser, ``{name: paraphraser or None}``,
    or spec names such as ``"none,canonical"``) on ``covers`` (dicts with ``text`` and optional ``question``,
    or strings), ``payloads`` random payloads per cover for each decoder. ``workers`` > 1 measures families
    in that many processes (the paraphrasers must then pickle); the result is the same. ``on_family(name)``
    is called as each family is done."""
    start = time.perf_counter()
    built = _as_paraphrasers(paraphrasers)
    texts = _as_covers(covers)
    names = list(families) if families is not None else sorted(FAMILIES)
    for name in names:
        make_family(name)  # a KeyError naming the known families before any work
    args = (built, texts, payloads, windows, seed, bootstrap, learned)
    by_family: dict[str, list[FamilyResult]] = {}
    if workers > 1 and len(names) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn, not fork: a forked child of a process with threads (a progress display, BLAS) may hang
        with ProcessPoolExecutor(min(workers, len(names)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_measure_family, name, *args): name for name in names}
            for future in as_completed(futures):
                by_family[futures[future]] = future.result()
                if on_family is not None:
                    on_family(futures[future])
    else:
        for name in names:
            by_family[name] = _measure_family(name, *args)
            if on_family is not None:
                on_family(name)
    return SearchResult(
        rows=[row for name in names for row in by_family[name]],
        paraphrasers=list(built),
        families=names,
        covers=len(texts),
        payloads=payloads,
        windows=windows,
        seed=seed,
        wall_seconds=round(time.perf_counter() - start, 1),
    )


def family_selection(spec: str | None) -> list[str]:
    """Family names from ``all`` (default), ``development``/``dev``, ``held-out``, ``held-out-2`` (the second
    held-out set), ``held-out-3`` (the third), ``held-out-4`` (the fourth), or a comma list of names."""
    if spec is None or spec.strip() in ("", "all"):
        return sorted(FAMILIES)
    s = spec.strip()
    if s in ("development", "dev"):
        return sorted(DEVELOPMENT)
    if s in ("held-out", "held_out", "heldout"):
        return sorted(HELD_OUT)
    if s in ("held-out-2", "held_out_2", "heldout2"):
        return sorted(HELD_OUT_2)
    if s in ("held-out-3", "held_out_3", "heldout3"):
        return sorted(HELD_OUT_3)
    if s in ("held-out-4", "held_out_4", "heldout4"):
        return sorted(HELD_OUT_4)
    names = [x.strip() for x in s.split(",") if x.strip()]
    for n in names:
        make_family(n)  # KeyError naming the known families
    return names


# ------------------------------------------------------------------------------------------------- report


def _fmt(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{value:.2f}"


def search_rows(result: SearchResult, families: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the ranked table (by bits/KB through the last paraphraser): per paraphraser the own
    decoder's and the learned decoder's bits/KB [95% CI]."""
    head = ["family", "kind", "split", "sites/cover"]
    for p in result.paraphrasers:
        head += [f"{p}: own", f"{p}: learned"]
    rows = []
    for f in result.ranked():
        if families is not None and f not in families:
            continue
        first = next(r for r in result.rows if r.family == f)
        row = [f, first.kind, first.split, f"{first.sites_per_cover:.2f}"]
        for p in result.paraphrasers:
            c = result.cell(f, p)
            row += [_fmt(c.own_bits_per_kb, c.own_ci95), _fmt(c.learned_bits_per_kb, c.learned_ci95)] if c else ["", ""]
        rows.append(row)
    return head, rows


def search_table(result: SearchResult, families: Sequence[str] | None = None) -> str:
    """``search_rows`` as a markdown table."""
    head, rows = search_rows(result, families)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_search(result: SearchResult, path: Path) -> Path:
    """Bits/KB per family (rows, ranked) through each paraphraser (panels): own decoder and learned decoder
    with 95% CI bars; held-out families' labels in italics and marked (held out)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fams = list(reversed(result.ranked()))
    n = len(result.paraphrasers)
    fig = Figure(figsize=(2.0 + 3.2 * n, 1.2 + 0.22 * len(fams)), layout="constrained")
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    ys = range(len(fams))
    for ax, p in zip(axes, result.paraphrasers):
        for offset, key, color, label in (
            (0.2, "own", "#c0392b", "own decoder"),
            (-0.2, "learned", "#2c7fb8", "learned decoder"),
        ):
            vals, lo, hi = [], [], []
            for f in fams:
                c = result.cell(f, p)
                v = getattr(c, f"{key}_bits_per_kb") if c else None
                ci = getattr(c, f"{key}_ci95") if c else None
                v = v or 0.0
                vals.append(v)
                lo.append(max(0.0, v - (ci[0] if ci else v)))
                hi.append(max(0.0, (ci[1] if ci else v) - v))
            ax.barh([y + offset for y in ys], vals, height=0.38, xerr=[lo, hi], color=color, label=label,
                    error_kw={"elinewidth": 0.6, "capsize": 1.5})  # fmt: skip
        ax.set_xscale("symlog", linthresh=1.0)
        ax.axvline(1.0, color="grey", linewidth=0.6, linestyle=":")
        ax.set_title(p.replace("$", r"\$"), fontsize=9)
        ax.set_xlabel("bits/KB (symlog)", fontsize=8)
        ax.tick_params(labelsize=7)
    labels = [f + (" (held out)" if split_of(f) == "held-out" else "") for f in fams]
    axes[0].set_yticks(list(ys), labels)
    for tick, f in zip(axes[0].get_yticklabels(), fams):
        if split_of(f) == "held-out":
            tick.set_fontstyle("italic")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Candidate channels: bits/KB through each paraphraser (dotted line: 1 bit/KB)", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    return path


def write_search_report(out: Path, result: SearchResult) -> dict[str, Path]:
    """results.json, table.md (ranked), fig_search.png and report.md/report.html in ``out``."""
    from legible.report import Code, Heading, Image, Para, Table, write_pages

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "table": out / "table.md", "figure": out / "fig_search.png"}
    paths["results"].write_text(json.dumps(result.as_dict(), indent=1))
    paths["table"].write_text(search_table(result))
    head, rows = search_rows(result)
    plot_search(result, paths["figure"])
    last = result.paraphrasers[-1]
    opened = result.open_families(last)
    blocks = [
        Heading(1, "legible stego --search: candidate hidden channels"),
        Para(
            f"{len(result.families)} families of meaning-keeping surface choices x {len(result.paraphrasers)} "
            f"paraphrasers on {result.covers} covers, {result.payloads} payloads per cover and decoder, wall time "
            f"{result.wall_seconds} s. Estimator: {result.estimator}."
        ),
        Image("fig_search.png", "bits/KB per family", "bits/KB per family (ranked) through each paraphraser"),
        Heading(2, f"Families with more than 1 bit/KB through {last}"),
        Para(", ".join(opened) or "none"),
        Heading(2, "Bits per KB [95% CI], own decoder and learned decoder"),
        Table(head, [[Code(r[0]), *r[1:]] for r in rows]),
    ]
    md, html = write_pages(out, "legible stego --search", blocks)
    paths["report"], paths["html"] = md, html
    return paths
