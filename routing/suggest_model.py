"""The category-suggestion model learned from the city's own history, for any language.

What it learns from: each complaint's description and the category it ended with (after staff corrected it:
complaints_complaint.category is the current one), leaving out hidden complaints (moderated away), those under a
catch-all category (settings.SUGGEST_CATCH_ALL: they say nothing of where a text belongs) and categories no longer
active. How: TF-IDF over character n-grams within words (any language, typos and word forms included) and a
multinomial logistic regression (scikit-learn).

How it is kept: as a routing.SuggestionModel row with a version, the weights as an .npz archive of plain arrays
(the vocabulary as strings, idf, coefficients, intercepts) and the settings as JSON. Loading reads them with
`numpy.load(..., allow_pickle=False)` and rebuilds the vectoriser from its parameters: no pickle, so no code runs
whatever the row holds; arrays of the wrong shape or kind are refused (ModelRejected) and the lexical scorer answers
alone.

Trained by `manage.py train_suggestions` and the scheduled task routing.tasks.suggestion_model_train (celery beat).
"""
import io
import logging
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from .models import SuggestionModel

log = logging.getLogger(__name__)

FEATURES = {"analyzer": "char_wb", "ngram_range": [2, 5], "lowercase": True, "sublinear_tf": True,
            "max_features": 60_000, "min_df": 2}
ARRAYS = ("vocabulary", "idf", "coef", "intercept")
KEEP_VERSIONS = 5  # older models are deleted after a new one is stored


class ModelRejected(ValueError):
    """A stored model that is not what this code writes."""


class NotEnoughHistory(ValueError):
    """Too few corrected complaints to learn from (settings.SUGGEST_MODEL_MIN_SAMPLES, two categories at least)."""


# --- the history -----------------------------------------------------------------------------------------------

HISTORY_SQL = """
    SELECT c.description, k.code FROM complaints_complaint c JOIN routing_category k ON k.id = c.category_id
    WHERE k.active AND c.state <> 'hidden' AND length(btrim(c.description)) >= 3 AND NOT (k.code = ANY(%s))
    ORDER BY c.id"""


def history():
    """(texts, codes): what residents wrote and the category each complaint ended with."""
    with connection.cursor() as cur:
        cur.execute(HISTORY_SQL, [list(settings.SUGGEST_CATCH_ALL)])
        rows = cur.fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


# --- training --------------------------------------------------------------------------------------------------

def _vectoriser(**overrides):
    from sklearn.feature_extraction.text import TfidfVectorizer

    params = {**FEATURES, **overrides}
    params["ngram_range"] = tuple(params["ngram_range"])
    return TfidfVectorizer(dtype=np.float32, **params)


def fit(texts, codes):
    """A fitted (vectoriser, classifier) pair. On one BLAS thread: a worker shares its machine, and on two busy
    cores two BLAS threads took 4x the wall time of one (bench/README.md)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    vectoriser = _vectoriser()
    with threadpool_limits(limits=1):
        x = vectoriser.fit_transform(texts)
        classifier = LogisticRegression(C=10.0, max_iter=2000)
        classifier.fit(x, codes)
    return vectoriser, classifier


def _top_k(probabilities, classes, truth, k):
    order = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean([t in classes[row] for t, row in zip(truth, order)]))


def evaluate(texts, codes, seed=0):
    """Top-1 and top-3 on a fifth of the history held out (stratified), the model fitted on the rest."""
    from sklearn.model_selection import train_test_split

    try:
        train_x, test_x, train_y, test_y = train_test_split(texts, codes, test_size=0.2, random_state=seed,
                                                            stratify=codes)
    except ValueError:  # a category with a single complaint: no stratified split
        train_x, test_x, train_y, test_y = train_test_split(texts, codes, test_size=0.2, random_state=seed)
    if len(set(train_y)) < 2 or not test_x:
        return {}
    vectoriser, classifier = fit(train_x, train_y)
    probabilities = classifier.predict_proba(vectoriser.transform(test_x))
    classes = classifier.classes_
    return {"held_out": len(test_x), "top1": _top_k(probabilities, classes, test_y, 1),
            "top3": _top_k(probabilities, classes, test_y, 3)}


def _archive(vectoriser, classifier):
    vocabulary = np.empty(len(vectoriser.vocabulary_), dtype=object)
    for term, index in vectoriser.vocabulary_.items():
        vocabulary[index] = term
    coef = classifier.coef_.astype(np.float32)
    intercept = classifier.intercept_.astype(np.float32)
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row; store both (softmax of -z/2, z/2)
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, vocabulary=vocabulary.astype(str), idf=vectoriser.idf_.astype(np.float32),
                        coef=coef, intercept=intercept)
    return buffer.getvalue()


def model_train(*, evaluate_first=True):
    """Learn a model from the history and store it as the next version (the newest answers from then on).

    Raises NotEnoughHistory when there is too little to learn from; then nothing changes."""
    texts, codes = history()
    if len(texts) < settings.SUGGEST_MODEL_MIN_SAMPLES or len(set(codes)) < 2:
        raise NotEnoughHistory(f"{len(texts)} complaints in {len(set(codes))} categories to learn from; at least "
                               f"{settings.SUGGEST_MODEL_MIN_SAMPLES} in two categories are needed")
    metrics = evaluate(texts, codes) if evaluate_first else {}
    started = time.perf_counter()
    vectoriser, classifier = fit(texts, codes)
    seconds = time.perf_counter() - started
    weights = _archive(vectoriser, classifier)
    metrics.update(size_bytes=len(weights), features=len(vectoriser.vocabulary_))
    with transaction.atomic():
        with connection.cursor() as cur:
            # one new version at a time: two trainings at once would both take the same number
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('geo_ourcity.suggestion_model'))")
        version = (SuggestionModel.objects.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        row = SuggestionModel.objects.create(
            version=version, classes=[str(c) for c in classifier.classes_], params=FEATURES, weights=weights,
            samples=len(texts), train_seconds=round(seconds, 3), metrics=metrics)
        old = list(SuggestionModel.objects.order_by("-version").values_list("pk", flat=True)[KEEP_VERSIONS:])
        SuggestionModel.objects.filter(pk__in=old).delete()
    log.info("suggestion model history-v%d: %d complaints, %.1f s, %s", version, len(texts), seconds, metrics)
    return row


# --- loading and answering ------------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    name: str
    classes: list
    vectoriser: object
    coef: np.ndarray  # classes x features
    intercept: np.ndarray

    def probabilities(self, text, codes):
        """The model's probability for each of `codes` (the lexicon's order; 0 for a code it never saw), or None
        when it knows none of them."""
        x = self.vectoriser.transform([text or ""])
        z = np.asarray(x @ self.coef.T).ravel() + self.intercept
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        index = {c: i for i, c in enumerate(self.classes)}
        out = np.array([p[index[c]] if c in index else 0.0 for c in codes], dtype=np.float64)
        return out if out.sum() > 0 else None


def _read(row):
    try:
        with np.load(io.BytesIO(bytes(row.weights)), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in ARRAYS}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelRejected(f"history-v{row.version}: the weights are not a plain npz archive ({exc})") from None
    vocabulary, idf, coef, intercept = (arrays[n] for n in ARRAYS)
    classes = row.classes
    if vocabulary.dtype.kind != "U" or vocabulary.ndim != 1 or idf.shape != vocabulary.shape:
        raise ModelRejected(f"history-v{row.version}: vocabulary and idf do not match")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) \
            or coef.shape != (len(classes), len(vocabulary)) or intercept.shape != (len(classes),):
        raise ModelRejected(f"history-v{row.version}: the weights do not match the classes")
    for array in (idf, coef, intercept):
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ModelRejected(f"history-v{row.version}: weights that are not finite numbers")
    params = row.params if isinstance(row.params, dict) else {}
    if set(params) - set(FEATURES) or params.get("analyzer") not in ("char_wb", "char", "word"):
        raise ModelRejected(f"history-v{row.version}: unknown feature settings")
    vectoriser = _vectoriser(**{**params, "min_df": 1, "max_features": None},
                             vocabulary={str(t): i for i, t in enumerate(vocabulary)})
    vectoriser.idf_ = idf
    return LoadedModel(name=f"history-v{row.version}", classes=list(classes), vectoriser=vectoriser,
                       coef=coef.astype(np.float32), intercept=intercept.astype(np.float32))


def model_load(key, *, by="version"):
    """The stored model of this version (or id), ready to answer; None without one (or if it is refused:
    logged)."""
    if key is None:
        return None
    row = SuggestionModel.objects.filter(**{by: key}, active=True).first()
    if row is None:
        return None
    try:
        return _read(row)
    except ModelRejected as exc:
        log.error("suggestion model refused, the lexical scorer answers alone: %s", exc)
        return None
