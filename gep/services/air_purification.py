"""Air purification (空气净化 / 大气净化), methodology §4.7.

Per county and pollutant (SO₂, NOₓ, dust): Q_k = min(emission_k, Σ_i q_k,i × A_i) (gep/services/
purification.py), with per-area capacities q [kg ha⁻¹ a⁻¹] of forest (broadleaf, conifer, bamboo),
shrub and grassland (cropland is not credited), and the county's emissions from the emissions table.
Valued at the treatment cost of each pollutant (防治费用法: SO₂ 1,200, NOₓ 630, dust 150 CNY/t, 2010).
"""
from __future__ import annotations

from gep.services.purification import PurificationService, emissions_input

POLLUTANTS = (("so2", "SO2 absorbed"), ("nox", "NOx absorbed"), ("dust", "dust retained"))


class AirPurification(PurificationService):
    key = "air_purification"
    name_zh = "空气净化"
    pollutants = POLLUTANTS
    capacity_prefix = "air_capacity_"
    t_per_unit_capacity_m2 = 1e-4 * 1e-3  # kg/ha/a x m^2: 1e-4 ha per m^2, 1e-3 t per kg
    table_inputs = (emissions_input(POLLUTANTS),)

    def method(self, options):
        return "min(county emission, sum of per-area capacity x area) per pollutant; treatment cost"


SERVICE = AirPurification()
