"""The classical probabilistic CLV baseline: BG/NBD for purchase counts, Gamma-Gamma for spend.

Fitted by maximum likelihood with scipy; no dependency on the `lifetimes` package.

Inputs are the standard per-customer RFM summary (see `summarise_transactions`):

- ``frequency`` (x): number of repeat purchases, i.e. purchase days after the first one
  (several purchases on one day count as one);
- ``recency`` (t_x): age of the customer at the last purchase, i.e. time from the first
  purchase to the last one (0 when frequency is 0);
- ``T``: age of the customer at the cutoff, i.e. time from the first purchase to the cutoff;
- ``monetary_value`` (m_x): mean value of the repeat purchases (0 when frequency is 0).

Time unit: recency, T and every horizon ``t`` must be in one and the same unit, days or weeks
(``unit_days`` = 1 or 7; weeks is the unit of the published CDNOW results). Only the BG/NBD
scale ``alpha`` depends on the unit (``BgNbdParams.rescaled`` converts it); r, a, b, p, q, v
do not. The parameters record the unit they were fitted in.

Sources:
- BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative
  to the Pareto/NBD Model", Marketing Science 24(2) ("FHL 2005"); and Fader, Hardie & Lee,
  "Computing P(alive) Using the BG/NBD Model" (technical note on brucehardie.com).
- Gamma-Gamma: Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (technical
  note on brucehardie.com), after Colombo & Jiang (1999).

Checked in tests/models/test_probabilistic.py against the published CDNOW estimates, against
lifetimes 0.11.3, and against high-precision (mpmath) evaluations of the same formulas.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

# Log-parameters are kept in this box while optimising, so exp() can neither overflow nor
# reach 0 (exp(20) ~ 5e8: no real data set needs a larger parameter).
_LOG_BOUND = 20.0
# The expected-purchases formula divides by (a - 1); its limit at a = 1 is finite. Within this
# distance of 1 it is interpolated (error ~ this squared; closer, cancellation costs digits).
_A_NEAR_ONE = 1e-4


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters. Purchase rate lambda ~ Gamma(shape r, rate alpha); drop-out
    probability after each purchase p ~ Beta(a, b). ``alpha`` is in ``unit_days`` days."""

    r: float
    alpha: float
    a: float
    b: float
    unit_days: float = 7.0

    def rescaled(self, unit_days: float) -> BgNbdParams:
        """The same model with time measured in units of ``unit_days`` days (a rate per week is
        7 times a rate per day, so alpha scales by old unit / new unit)."""
        return replace(self, alpha=self.alpha * self.unit_days / unit_days, unit_days=unit_days)


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters: a purchase's value ~ Gamma(shape p, rate nu), and the
    customer's nu ~ Gamma(shape q, rate v). Mean spend per purchase: p * v / (q - 1)."""

    p: float
    q: float
    v: float

    @property
    def population_mean_spend(self) -> float:
        """E[M] = p v / (q - 1), finite only for q > 1."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else float("inf")


# --------------------------------------------------------------------------- input handling


def _as_rfm(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three summary columns as float arrays of one shape, checked for sense."""
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    x, t_x, age = np.broadcast_arrays(x, t_x, age)
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(age).all()):
        raise ValueError("frequency, recency and T must be finite")
    if (x < 0).any() or (t_x < 0).any():
        raise ValueError("frequency and recency must be non-negative")
    if (t_x > age * (1 + 1e-9) + 1e-9).any():
        raise ValueError("recency (age at last purchase) cannot exceed T (age at the cutoff)")
    return x, t_x, age


def _check_horizon(t) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if not np.isfinite(t).all() or (t < 0).any():
        raise ValueError("the horizon t must be finite and non-negative")
    return t


def _minimise_negative_mean_log_likelihood(objective, n_params: int, what: str) -> np.ndarray:
    """L-BFGS-B on log-parameters starting at all parameters = 1; returns the parameters."""
    result = minimize(
        objective, np.zeros(n_params), jac=True, method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * n_params, options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-13},
    )
    if not np.isfinite(result.fun):
        raise RuntimeError(f"{what} fit failed: the log-likelihood is not finite ({result.message})")
    if not result.success:
        warnings.warn(f"{what} fit did not report convergence: {result.message}", RuntimeWarning, stacklevel=3)
    if np.any(np.abs(result.x) >= _LOG_BOUND - 1e-6):
        warnings.warn(f"{what} fit hit a parameter bound (exp(+-{_LOG_BOUND})); the data may not "
                      "identify the model; consider a penalizer", RuntimeWarning, stacklevel=3)
    return np.exp(result.x)


# --------------------------------------------------------------------------- BG/NBD


def bgnbd_log_likelihood(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood, FHL (2005) eq. (6), in closed form (no hyp2f1):

        L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
            + [x > 0] B(a+1, b+x-1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x)),

    summed in log space, using B(a+1, b+x-1)/B(a, b+x) = a/(b+x-1)."""
    x, t_x, age = _as_rfm(frequency, recency, T)
    return _bgnbd_terms(np.array([params.r, params.alpha, params.a, params.b]), x, t_x, age)[0]


def _bgnbd_terms(theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray):
    """Log-likelihood per customer and its gradient with respect to (r, alpha, a, b)."""
    r, alpha, a, b = theta
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive_term = -(r + x) * np.log(alpha + age)  # still alive at T
    dead_term = np.where(  # dropped out right after the last purchase (only possible if x > 0)
        x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x), -np.inf)
    log_likelihood = common + np.logaddexp(alive_term, dead_term)
    w_dead = expit(dead_term - alive_term)  # posterior weight of the "dropped out" branch
    gradient = np.stack([
        digamma(r + x) - digamma(r) + np.log(alpha)
        - (1 - w_dead) * np.log(alpha + age) - w_dead * np.log(alpha + t_x),
        r / alpha - (r + x) * ((1 - w_dead) / (alpha + age) + w_dead / (alpha + t_x)),
        digamma(a + b) - digamma(a + b + x) + w_dead / a,
        digamma(b + x) - digamma(b) + digamma(a + b) - digamma(a + b + x)
        - np.where(x > 0, w_dead / np.maximum(b + x - 1, 1e-300), 0.0),
    ])
    return log_likelihood, gradient


def fit_bgnbd(frequency, recency, T, *, unit_days: float = 7.0, penalizer: float = 0.0) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters (FHL 2005, eq. 6).

    ``recency`` and ``T`` are in units of ``unit_days`` days (7: weeks, 1: days); the fitted
    ``alpha`` is in that unit. ``penalizer`` adds ``penalizer * (r^2 + alpha^2 + a^2 + b^2)``
    to the mean negative log-likelihood (the same L2 penalty as lifetimes' ``penalizer_coef``),
    which keeps the parameters finite on data that barely identifies them; 0 is plain ML.
    Optimised over log-parameters with L-BFGS-B and the analytic gradient."""
    x, t_x, age = _as_rfm(frequency, recency, T)
    if x.size == 0:
        raise ValueError("no customers to fit")

    def objective(log_theta):
        theta = np.exp(log_theta)
        log_likelihood, gradient = _bgnbd_terms(theta, x, t_x, age)
        value = -log_likelihood.mean() + penalizer * np.sum(theta**2)
        d_theta = -gradient.mean(axis=1) + 2 * penalizer * theta
        return value, d_theta * theta  # chain rule: d/d(log theta) = theta * d/d(theta)

    r, alpha, a, b = _minimise_negative_mean_log_likelihood(objective, 4, "BG/NBD")
    return BgNbdParams(float(r), float(alpha), float(a), float(b), unit_days=float(unit_days))


def _log_odds_dropped_out(params: BgNbdParams, x, t_x, age) -> np.ndarray:
    """log[P(dropped out) / P(alive)] = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x)) for x > 0;
    -inf for x = 0 (in BG/NBD a customer can only drop out right after a purchase)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return np.where(
        x > 0,
        np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x)),
        -np.inf,
    )


def probability_alive(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))
    (Fader, Hardie & Lee, "Computing P(alive) Using the BG/NBD Model"); computed as a logistic of
    the log-odds, so it cannot overflow.

    Note: it is 1 for every one-time buyer (x = 0), so it is no churn score on its own; see
    ``probability_no_purchase``."""
    x, t_x, age = _as_rfm(frequency, recency, T)
    return expit(-_log_odds_dropped_out(params, x, t_x, age))


def _log_no_purchase_if_alive(params: BgNbdParams, t, x, age) -> np.ndarray:
    """log P(no purchase in (T, T+t] | alive at T) = (r+x) log((alpha+T)/(alpha+T+t))."""
    return (params.r + x) * -np.log1p(t / (params.alpha + age))


def probability_no_purchase(params: BgNbdParams, t, frequency, recency, T) -> np.ndarray:
    """P(no purchase in (T, T+t] | x, t_x, T): the BG/NBD churn score over a horizon t.

    Derivation. A BG/NBD customer can only drop out immediately after a purchase, so a
    customer alive at T with purchase rate lambda makes no purchase in the next t with
    probability exp(-lambda t), whatever their drop-out probability p. Given the history and
    being alive, the likelihood in lambda is lambda^x exp(-lambda T), so the posterior of lambda
    is Gamma(shape r + x, rate alpha + T), and

        E[exp(-lambda t)] = ((alpha + T) / (alpha + T + t))^(r + x)

    (the gamma Laplace transform). A customer who has dropped out makes no purchase. Hence

        P(no purchase in (T, T+t]) = (1 - P(alive)) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x).

    (The same steps as FHL's derivation of P(alive) and of eq. (10); the tests check the result
    against direct numerical integration over the posterior of (lambda, p).) Unlike P(alive),
    which is 1 for every one-time buyer, it falls with the length of the horizon and rises with
    the time since the last purchase. ``t`` is in the unit of recency and T."""
    x, t_x, age = _as_rfm(frequency, recency, T)
    t = _check_horizon(t)
    p_alive = expit(-_log_odds_dropped_out(params, x, t_x, age))
    # 1 - P(alive) * (1 - E[exp(-lambda t)]), with the bracket as -expm1 for accuracy at small t.
    return 1.0 - p_alive * -np.expm1(_log_no_purchase_if_alive(params, t, x, age))


def _purchases_if_alive(r: float, alpha: float, a: float, b: float, t, x, age) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T, x, T] for a != 1 (FHL 2005, eq. 10 without P(alive)):

        (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],  z = t/(alpha+T+t).

    The bracket is evaluated through Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B)
    2F1(C-A, C-B; C; z), i.e. as 1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): the direct form
    multiplies a vanishing power by a diverging series and overflows for heavy buyers (large x)."""
    c = a + b + x - 1
    z = t / (alpha + age + t)
    return c / (a - 1) * (1.0 - (1.0 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, c, z))


def _purchases_if_alive_guarded(params: BgNbdParams, t, x, age) -> np.ndarray:
    """``_purchases_if_alive`` with hyp2f1's two weak spots handled; the value is smooth in a.

    - a = 1 is a removable singularity (0/0): within _A_NEAR_ONE of it, interpolate linearly
      between a = 1 -+ _A_NEAR_ONE (error of order _A_NEAR_ONE^2).
    - scipy's hyp2f1 returns NaN for some integer a - 1 with large c and z near 1: those entries
      are recomputed at a * (1 + 1e-9)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < _A_NEAR_ONE:
        below = _purchases_if_alive(r, alpha, 1.0 - _A_NEAR_ONE, b, t, x, age)
        above = _purchases_if_alive(r, alpha, 1.0 + _A_NEAR_ONE, b, t, x, age)
        weight = (a - (1.0 - _A_NEAR_ONE)) / (2 * _A_NEAR_ONE)
        return (1 - weight) * below + weight * above
    with np.errstate(invalid="ignore", over="ignore"):
        value = np.asarray(_purchases_if_alive(r, alpha, a, b, t, x, age), dtype=float)
        failed = ~np.isfinite(value)
        if failed.any():
            t_b, x_b, age_b = (np.broadcast_to(v, value.shape) for v in (t, x, age))
            value = value.copy()
            value[failed] = _purchases_if_alive(r, alpha, a * (1 + 1e-9), b, t_b[failed], x_b[failed], age_b[failed])
    return value


def expected_purchases(params: BgNbdParams, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T], FHL (2005) eq. (10):

        P(alive) * (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
        z = t / (alpha+T+t).

    Domain guards: t >= 0 so 0 <= z < 1; hyp2f1 is taken in Euler-transformed form, with the
    a = 1 singularity and scipy's NaN cases handled (see ``_purchases_if_alive_guarded``); a
    result that is still not finite raises. ``t`` is in the unit of recency and T."""
    x, t_x, age = _as_rfm(frequency, recency, T)
    t = _check_horizon(t)
    p_alive = expit(-_log_odds_dropped_out(params, x, t_x, age))
    expected = p_alive * _purchases_if_alive_guarded(params, t, x, age)
    if not np.isfinite(expected).all():
        raise FloatingPointError(f"expected_purchases: hyp2f1 gave no finite value for {params}")
    return np.maximum(expected, 0.0)


# --------------------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency, monetary_value) -> np.ndarray:
    """Per-customer log-likelihood of the mean spend m over x purchases (Fader & Hardie 2013):

        log L = log Gamma(px+q) - log Gamma(px) - log Gamma(q) + q log v + (px-1) log m + px log x
                - (px+q) log(v + x m).

    Defined for x > 0 and m > 0 only."""
    x, m = _as_spend(frequency, monetary_value)
    return _gamma_gamma_terms(np.array([params.p, params.q, params.v]), x, m)[0]


def _as_spend(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
    x, m = np.broadcast_arrays(np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float))
    if (x <= 0).any() or (m <= 0).any() or not (np.isfinite(x).all() and np.isfinite(m).all()):
        raise ValueError("Gamma-Gamma needs repeat buyers: frequency > 0 and monetary_value > 0, finite")
    return x, m


def _gamma_gamma_terms(theta: np.ndarray, x: np.ndarray, m: np.ndarray):
    """Log-likelihood per customer and its gradient with respect to (p, q, v)."""
    p, q, v = theta
    px = p * x
    log_likelihood = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m)
                      + px * np.log(x) - (px + q) * np.log(v + x * m))
    gradient = np.stack([
        x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(v + x * m)),
        digamma(px + q) - digamma(q) + np.log(v) - np.log(v + x * m),
        q / v - (px + q) / (v + x * m),
    ])
    return log_likelihood, gradient


def fit_gamma_gamma(frequency, monetary_value, *, penalizer: float = 0.0) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters (Fader & Hardie 2013) on the repeat buyers.

    Customers with frequency 0 carry no spend information (monetary_value is the mean of repeat
    purchases) and are left out; every repeat buyer needs monetary_value > 0. ``penalizer``
    adds ``penalizer * (p^2 + q^2 + v^2)`` to the mean negative log-likelihood, as in lifetimes.
    The model assumes spend independent of purchase frequency: check that before use."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    repeat = x > 0
    if not repeat.any():
        raise ValueError("no repeat buyers (frequency > 0) to fit the Gamma-Gamma model on")
    x, m = _as_spend(x[repeat], m[repeat])

    def objective(log_theta):
        theta = np.exp(log_theta)
        log_likelihood, gradient = _gamma_gamma_terms(theta, x, m)
        value = -log_likelihood.mean() + penalizer * np.sum(theta**2)
        return value, (-gradient.mean(axis=1) + 2 * penalizer * theta) * theta

    p, q, v = _minimise_negative_mean_log_likelihood(objective, 3, "Gamma-Gamma")
    if q <= 1.0:
        warnings.warn(f"Gamma-Gamma q = {q:.3g} <= 1: the mean spend is not finite", RuntimeWarning, stacklevel=2)
    return GammaGammaParams(float(p), float(q), float(v))


def conditional_expected_spend(params: GammaGammaParams, frequency, monetary_value) -> np.ndarray:
    """E[spend per purchase | x, m_x] = p (v + x m_x) / (p x + q - 1) (Fader & Hardie 2013):
    a weighted mean of the population mean p v / (q - 1) and the customer's own m_x, with weight
    p x / (p x + q - 1) on the latter. For x = 0 it is the population mean."""
    x = np.asarray(frequency, dtype=float)
    m = np.where(x > 0, np.asarray(monetary_value, dtype=float), 0.0)
    return params.p * (params.v + x * m) / (params.p * x + params.q - 1.0)


# --------------------------------------------------------------------------- CLV


def predict_clv(bgnbd: BgNbdParams, gg: GammaGammaParams, horizon, frequency, recency, T,
                monetary_value) -> np.ndarray:
    """Expected revenue over the next ``horizon`` (unit of recency and T): expected purchases
    (BG/NBD) times expected spend per purchase (Gamma-Gamma). Not discounted; this is revenue
    over the horizon, comparable to the project's CLV label."""
    return expected_purchases(bgnbd, horizon, frequency, recency, T) * conditional_expected_spend(
        gg, frequency, monetary_value)


# --------------------------------------------------------------------------- RFM summary


def summarise_transactions(transactions: pd.DataFrame, cutoff: pd.Timestamp, unit_days: float = 7.0) -> pd.DataFrame:
    """The RFM summary these models take, one row per customer with a purchase before ``cutoff``.

    From columns customer_id, purchased_at, amount: only amount > 0 are purchases (refunds are
    ignored), only purchases strictly before the cutoff count, and the purchases of one customer
    on one calendar day are one purchase with the summed amount. Returns, indexed by
    customer_id (sorted), in units of ``unit_days`` days:

    - frequency: purchase days after the first;
    - recency: first purchase day to last purchase day;
    - T: first purchase day to the cutoff (whole days when the cutoff is a midnight);
    - monetary_value: mean amount of the repeat purchase days (the first is left out), 0 if none.

    Customers without a purchase before the cutoff are absent."""
    cutoff = pd.Timestamp(cutoff)
    unit = pd.Timedelta(days=unit_days)
    at = pd.to_datetime(transactions["purchased_at"])
    amount = pd.to_numeric(transactions["amount"]).astype(float)
    keep = (amount > 0) & (at < cutoff)
    daily = (
        pd.DataFrame({"customer_id": transactions["customer_id"][keep], "day": at[keep].dt.normalize(),
                      "amount": amount[keep]})
        .groupby(["customer_id", "day"], sort=True)["amount"].sum()
        .reset_index()
    )
    per_customer = daily.groupby("customer_id", sort=True)
    first_day, last_day = per_customer["day"].min(), per_customer["day"].max()
    frequency = per_customer.size() - 1
    repeat_amount = per_customer["amount"].sum() - per_customer["amount"].first()  # rows are sorted by day
    summary = pd.DataFrame({
        "frequency": frequency.astype("int64"),
        "recency": (last_day - first_day) / unit,
        "T": (cutoff - first_day) / unit,
        "monetary_value": (repeat_amount / frequency.where(frequency > 0)).fillna(0.0),
    })
    summary.index.name = "customer_id"
    return summary
