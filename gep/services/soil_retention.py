"""Soil retention (土壤保持), RUSLE (methodology §4.2, §0.5 item 2).

A_sr = R × K × LS × (1 − C × P)   [t ha⁻¹ a⁻¹], per pixel; Q_sr = Σ A_sr × area [t/a]

- R, rainfall erosivity [MJ mm ha⁻¹ h⁻¹ a⁻¹]: an input raster (a published erosivity map). The
  monthly Fournier formula printed in §4.2 does not reproduce published values for northern Zhejiang
  (§0.5 item 2), so it is not offered until it is checked against a published R for a named place.
- K, soil erodibility [t ha h ha⁻¹ MJ⁻¹ mm⁻¹]: ``k_factor = "epic"`` (default) from sand, silt, clay
  and organic carbon rasters by EPIC (Williams 1990) with Zhang Keli's correction for Chinese soils,
  K = (−0.01383 + 0.51575 K_EPIC) × 0.1317, computed once per run on the soil rasters' own grid (a
  derived layer: K of the soil map, then sampled bilinear like any input, as a GIS K map would be);
  or ``"raster"``, a K raster in SI units.
- LS [-]: from the DEM (gep/derived.py: Horn slope, slope-based L and S of §4.2), or an LS raster.
- C [-]: ``c_factor = "vegetation_cover"`` (default) from fractional cover f_c by Cai Chongfa 2000,
  C = 1 (f_c = 0), 0.6508 − 0.3436 log10(f_c %) (0 < f_c ≤ 78.3 %), 0 above; or ``"by_class"``.
- P [-]: by class (paddy 0.15, dry cropland 0.4, natural vegetation 1).

Valued (S-Garze eqs. 4-5) as avoided sedimentation, V_sd = λ × Q_sr / ρ × dredging cost, plus
avoided nutrient loss, V_N = Q_sr × TN × N treatment cost and V_P = Q_sr × TP × P treatment cost.
Rows: ``sediment`` (m³), ``nitrogen`` (t N), ``phosphorus`` (t P), and ``soil_retained`` (t, a memo
row: the physical quantity of the literature, valued through the other three).
Credited ecosystem types: those with a ``c_factor_default`` (vegetation and cropland; not water,
built-up or bare land).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from gep.services.base import (Finalized, Indicator, Service, ServiceBlock, ServiceContext, TypeQuantity,
                               aux_values, sum3)
from gep.services.inputs import (EROSIVITY, LS_FACTOR, SOIL_ERODIBILITY, SOIL_ERODIBILITY_EPIC, VEGETATION_COVER)

M2_PER_HA = 1e4


def k_epic_us(sand_pct, silt_pct, clay_pct, organic_carbon_pct):
    """EPIC soil erodibility K in US units [0.01 t acre h / (acre ft tonf in)] (Williams 1990).

    Parameters are mass percentages [%] of sand, silt, clay and organic carbon.
    """
    san, sil, cla, c = sand_pct, silt_pct, clay_pct, organic_carbon_pct
    sn1 = 1.0 - san / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        texture = np.where(cla + sil > 0, (sil / (cla + sil)) ** 0.3, 0.0)
    return ((0.2 + 0.3 * np.exp(-0.0256 * san * (1.0 - sil / 100.0))) * texture
            * (1.0 - 0.25 * c / (c + np.exp(3.72 - 2.95 * c)))
            * (1.0 - 0.7 * sn1 / (sn1 + np.exp(-5.51 + 22.9 * sn1))))


def k_chinese_si(k_epic, intercept: float, slope: float, si_factor: float):
    """K for Chinese soils in SI units [t ha h ha⁻¹ MJ⁻¹ mm⁻¹]: (intercept + slope × K_EPIC) × 0.1317,
    floored at 0 (Zhang Keli et al.; methodology §4.2)."""
    return np.maximum(intercept + slope * k_epic, 0.0) * si_factor


def c_from_cover(cover, intercept, slope, full_cover_pct):
    """RUSLE C [-] from fractional vegetation cover [0-1] (Cai Chongfa 2000, methodology §4.2):
    1 at f_c = 0, intercept − slope × log10(f_c %) for 0 < f_c ≤ full_cover_pct, 0 above."""
    fc = np.asarray(cover, dtype=np.float64) * 100.0
    c = np.zeros_like(fc)
    mid = (fc > 0) & (fc <= full_cover_pct)
    c[mid] = intercept - slope * np.log10(fc[mid])  # the logarithm only where it is used
    c[fc <= 0] = 1.0
    return np.clip(c, 0.0, 1.0, out=c)


def soil_retention_t(r, k, ls, c, p, area_m2):
    """Soil retained per pixel [t/a]: R K LS (1 − C P) [t/ha/a] × area [ha] (RUSLE, S-Garze §2.4.2).

    r [MJ mm ha^-1 h^-1 a^-1], k [t ha h ha^-1 MJ^-1 mm^-1], ls, c, p [-], area_m2 [m^2].
    """
    return r * k * ls * (1.0 - c * p) * area_m2 / M2_PER_HA


class SoilOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    k_factor: Literal["epic", "raster"] = "epic"
    c_factor: Literal["vegetation_cover", "by_class"] = "vegetation_cover"


class SoilRetention(Service):
    key = "soil_retention"
    name_zh = "土壤保持"
    category = "regulating"
    aux_inputs = (EROSIVITY, LS_FACTOR, SOIL_ERODIBILITY_EPIC, SOIL_ERODIBILITY, VEGETATION_COVER)
    Options = SoilOptions

    def inputs_needed(self, options):
        k = SOIL_ERODIBILITY_EPIC if options.k_factor == "epic" else SOIL_ERODIBILITY
        c = (VEGETATION_COVER,) if options.c_factor == "vegetation_cover" else ()
        return (EROSIVITY, LS_FACTOR, k, *c)

    def indicators(self, options):
        return (Indicator("soil_retained", "t", None, "soil erosion avoided, R K LS (1 - C P) (memo: valued "
                                                       "through sediment, nitrogen and phosphorus)"),
                Indicator("sediment", "m3", "dredging", "sediment kept out of reservoirs and rivers, lambda Q / rho"),
                Indicator("nitrogen", "t N", "n_removal", "soil nitrogen kept, Q x TN"),
                Indicator("phosphorus", "t P", "p_removal", "soil phosphorus kept, Q x TP"))

    def method(self, options):
        k = "K by EPIC + Zhang correction" if options.k_factor == "epic" else "K raster"
        c = "C from vegetation cover (Cai 2000)" if options.c_factor == "vegetation_cover" else "C by class"
        return (f"RUSLE R K LS (1 - C P): R raster, {k}, LS from the DEM (slope-based), {c}, P by class; "
                "replacement cost (dredging + N/P treatment)")

    def credited_types(self, ref, options):
        return tuple(ref.per_type("c_factor_default"))

    def parameters(self, ecosystem_type, ctx):
        ref, o = ctx.ref, ctx.options
        params = [ref.coefficient("p_factor", ecosystem_type)]
        params += ([ref.coefficient(k) for k in ("cai_c_intercept", "cai_c_slope", "cai_full_cover_pct")]
                   + [ref.coefficient("vegetation_cover_default", ecosystem_type)]
                   if o.c_factor == "vegetation_cover" else [ref.coefficient("c_factor_default", ecosystem_type)])
        if o.k_factor == "epic":
            params += [ref.coefficient(k) for k in ("zhang_k_intercept", "zhang_k_slope", "epic_si_factor")]
        params += [ref.coefficient(k) for k in ("slope_length", "sediment_deposition_ratio", "soil_bulk_density",
                                                "soil_total_nitrogen", "soil_total_phosphorus")]
        return params

    def _c(self, block, ctx, t):
        ref = ctx.ref
        if ctx.options.c_factor == "by_class":
            return ref.coefficient("c_factor_default", t).triple(decreasing=True), np.zeros(block.type_area_m2[t].size, bool)
        cover, filled = aux_values(block, ctx, VEGETATION_COVER, t, self.key)
        c = c_from_cover(cover, ref.coefficient("cai_c_intercept").value, ref.coefficient("cai_c_slope").value,
                         ref.coefficient("cai_full_cover_pct").value)
        return c, filled

    def block_quantity(self, block: ServiceBlock, ctx: ServiceContext):
        ref, out = ctx.ref, {}
        for t, area in self.credited_in(block, ctx):
            r, r_filled = aux_values(block, ctx, EROSIVITY, t, self.key)
            ls, ls_filled = aux_values(block, ctx, LS_FACTOR, t, self.key)
            k, k_filled = aux_values(block, ctx, SOIL_ERODIBILITY_EPIC if ctx.options.k_factor == "epic"
                                     else SOIL_ERODIBILITY, t, self.key)
            c, c_filled = self._c(block, ctx, t)
            p = ref.coefficient("p_factor", t).triple(decreasing=True)
            q = soil_retention_t(r, k, ls, c, p, area)
            out[t] = ({"soil_retained": sum3(q)}, float(area[r_filled | ls_filled | k_filled | c_filled].sum()))
        return out

    def finalize(self, totals: dict[str, TypeQuantity], ctx: ServiceContext) -> Finalized:
        ref = ctx.ref
        lam = ref.coefficient("sediment_deposition_ratio").bounds3()
        rho = ref.coefficient("soil_bulk_density").bounds3(decreasing=True)
        tn = ref.coefficient("soil_total_nitrogen").bounds3()
        tp = ref.coefficient("soil_total_phosphorus").bounds3()
        out = {}
        for t, tq in totals.items():
            q = tq.quantities["soil_retained"]
            out |= {(t, "soil_retained"): q, (t, "sediment"): lam * q / rho, (t, "nitrogen"): q * tn,
                    (t, "phosphorus"): q * tp}
        return Finalized(out)


SERVICE = SoilRetention()
