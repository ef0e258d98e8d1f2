"""Water purification (水质净化 / 水环境净化), methodology §4.8.

Per county and pollutant (COD, NH₃-N, TP): Q_k = min(emission_k, Σ_i q_k,i × A_i) (gep/services/
purification.py), with per-area capacities q [t km⁻² a⁻¹] of wetland and open water, and the
county's emissions to surface water from the emissions table. In Jiaxing's loaded plain the capacity
binds (§4.8). Valued at the treatment cost (COD 700, NH₃-N 875 CNY/t 2010; TP 2,800 [E]).
"""
from __future__ import annotations

from gep.services.purification import PurificationService, emissions_input

POLLUTANTS = (("cod", "COD removed"), ("nh3n", "NH3-N removed"), ("tp", "total phosphorus removed"))


class WaterPurification(PurificationService):
    key = "water_purification"
    name_zh = "水质净化"
    pollutants = POLLUTANTS
    capacity_prefix = "water_capacity_"
    t_per_unit_capacity_m2 = 1e-6  # t/km2/a x m^2
    table_inputs = (emissions_input(POLLUTANTS),)

    def method(self, options):
        return "min(county emission to water, sum of per-area capacity x area) per pollutant; treatment cost"


SERVICE = WaterPurification()
