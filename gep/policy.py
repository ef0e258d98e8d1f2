"""A bank's loan policy as data: ΔGEP → interest-rate discount (methodology §12.3).

The policy file (TOML, e.g. configs/loan_policy_example.toml; validated, unknown keys rejected)
holds a tier table on the relative or absolute ΔGEP at constant prices, or a flat preferential
discount; a cap; optionally a ratchet (a further discount once a target ΔGEP is reached); and the
eligibility rules that withhold any discount. :func:`discount` is a plain function of one unit's
ΔGEP and flags; it says which tier applied and every reason a discount was withheld.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gep.config import REPO_CONFIGS
from gep.errors import InputProblem, InputValidationError, fail

DEFAULT_POLICY = REPO_CONFIGS / "loan_policy_example.toml"  # an EXAMPLE, not any bank's schedule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tier(_Strict):
    lower: float = Field(alias="from")
    upper: float = Field(alias="to")
    discount_pp: float = Field(ge=0)


class Ratchet(_Strict):
    target_pct: float
    extra_pp: float = Field(ge=0)


class Eligibility(_Strict):
    min_extent_share: float | None = Field(0.5, description="no discount unless land-cover change explains at least "
                                                            "this share of ΔGEP (not prices, rainfall, statistics)")
    max_default_filled_share: float = Field(0.10, ge=0, le=1)
    negative_impact: bool = True
    quality_flag_not_ok: bool = True


class LoanPolicy(_Strict):
    title: str
    measure: Literal["relative", "absolute"] = "relative"
    cap_pp: float = Field(gt=0)
    min_delta_cny: float = 0.0
    neutral_band_pct: float = Field(0.0, ge=0, description="|ΔGEP| up to this % of the baseline is a neutral impact")
    tiers: list[Tier] = Field(default_factory=list)
    flat_pp: float | None = Field(None, ge=0, description="a flat discount for every eligible positive ΔGEP, "
                                                          "instead of tiers")
    ratchet: Ratchet | None = None
    eligibility: Eligibility = Eligibility()

    @model_validator(mode="after")
    def _tiers_contiguous(self) -> "LoanPolicy":
        if (self.flat_pp is None) == (not self.tiers):
            raise ValueError("give either [[tiers]] or flat_pp, not both and not neither")
        for i, t in enumerate(self.tiers):
            if not t.lower < t.upper:
                raise ValueError(f"tier {i + 1}: from {t.lower:g} must be below to {t.upper:g}")
            if t.discount_pp > self.cap_pp:
                raise ValueError(f"tier {i + 1}: discount {t.discount_pp:g} pp exceeds cap_pp {self.cap_pp:g}")
            if i and t.lower != self.tiers[i - 1].upper:
                prev = self.tiers[i - 1]
                what = "overlap" if t.lower < prev.upper else "leave a gap"
                raise ValueError(f"tiers {i} and {i + 1} {what}: [{prev.lower:g}, {prev.upper:g}) then "
                                 f"[{t.lower:g}, {t.upper:g}); each tier must start where the one before ends")
        if self.tiers and not math.isinf(self.tiers[-1].upper):
            raise ValueError(f"the last tier must end at inf (it ends at {self.tiers[-1].upper:g}): every ΔGEP "
                             "above the first tier needs a tier")
        return self


def load_policy(path: Path) -> LoanPolicy:
    """Read and validate a policy file; an error names the file, the key and the fix."""
    if not path.is_file():
        raise fail(path, "(file)", "loan policy file not found", "pass --policy configs/loan_policy_example.toml "
                   "or a copy of it")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail(path, "(file)", f"not valid TOML: {exc}", "fix the syntax at the position given") from exc
    try:
        return LoanPolicy.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or ("tiers" if "tier" in err["msg"] else "(top level)")
            fix = f"remove or rename `{loc}`" if err["type"] == "extra_forbidden" else "correct the policy"
            problems.append(InputProblem(str(path), loc, err["msg"], fix))
        raise InputValidationError(problems) from exc


@dataclass(frozen=True)
class Discount:
    discount_pp: float
    tier: str          # the tier or rule that applied ("none" when withheld or below the tiers)
    reasons: str       # why, including every eligibility rule that withheld it


def discount(policy: LoanPolicy, delta_cny: float, delta_pct: float | None, default_filled_share: float,
             quality_ok: bool, extent_cny: float | None = None) -> Discount:
    """The discount [percentage points] for one unit's ΔGEP at constant prices (``delta_pct``: in %
    of the baseline GEP, None when the baseline is 0; ``extent_cny``: the part of ΔGEP due to
    land-cover change, None: not attributed)."""
    el, withheld = policy.eligibility, []
    if el.min_extent_share is not None and extent_cny is not None and delta_cny > 0:
        share = extent_cny / delta_cny
        if share < el.min_extent_share:
            withheld.append(f"driven by other inputs than land-cover change (climate, prices, statistics): land "
                            f"cover explains {share:.0%} of ΔGEP (policy minimum {el.min_extent_share:.0%})")
    if el.negative_impact and delta_cny < 0:
        withheld.append(f"negative impact: ΔGEP {delta_cny:,.0f} CNY")
    if default_filled_share > el.max_default_filled_share:
        withheld.append(f"inputs filled over {default_filled_share:.1%} of a service's land "
                        f"(limit {el.max_default_filled_share:.0%})")
    if el.quality_flag_not_ok and not quality_ok:
        withheld.append("quality flag not ok in the baseline or assessment year")
    if delta_cny < policy.min_delta_cny:
        withheld.append(f"ΔGEP {delta_cny:,.0f} CNY below min_delta_cny {policy.min_delta_cny:,.0f}")
    measure = delta_pct if policy.measure == "relative" else delta_cny
    if measure is None:
        withheld.append("no baseline GEP: the relative change is undefined")
    if withheld:
        return Discount(0.0, "none", "; ".join(withheld))
    if policy.flat_pp is not None:
        pp, tier = (policy.flat_pp, "flat") if delta_cny > 0 else (0.0, "none")
    else:
        hit = next((t for t in policy.tiers if t.lower <= measure < t.upper), None)
        pp = hit.discount_pp if hit else 0.0
        unit = "%" if policy.measure == "relative" else " CNY"
        tier = f"[{hit.lower:g}, {hit.upper:g}){unit}" if hit else "none"
    reasons = f"ΔGEP {measure:,.4g}{'%' if policy.measure == 'relative' else ' CNY'}: tier {tier}"
    if policy.ratchet is not None and delta_pct is not None and delta_pct >= policy.ratchet.target_pct:
        pp += policy.ratchet.extra_pp
        reasons += f"; ratchet: target {policy.ratchet.target_pct:g}% reached, +{policy.ratchet.extra_pp:g} pp"
    if pp > policy.cap_pp:
        reasons += f"; capped at {policy.cap_pp:g} pp"
        pp = policy.cap_pp
    return Discount(pp, tier, reasons)
