"""UNAIDS regions as ISO 3166 alpha-2 country sets, for audience filters like `regions: [EECA]`."""

from __future__ import annotations

REGIONS: dict[str, frozenset[str]] = {
    # Eastern Europe and Central Asia
    "EECA": frozenset("AM AZ BY GE KZ KG MD RU TJ TM UA UZ AL BA ME MK RS XK".split()),
    # Eastern and Southern Africa
    "ESA": frozenset("AO BW KM ER SZ ET KE LS MG MW MU MZ NA RW SC ZA SS SD TZ UG ZM ZW".split()),
    # West and Central Africa
    "WCA": frozenset("BJ BF CV CM CF TD CG CD CI GQ GA GM GH GN GW LR ML MR NE NG ST SN SL TG".split()),
    # Latin America and the Caribbean
    "LAC": frozenset(
        "AR BO BR CL CO CR CU DO EC SV GT HN MX NI PA PY PE UY VE AG BS BB BZ DM GD GY HT JM KN LC VC SR "
        "TT".split()
    ),
    # Middle East and North Africa
    "MENA": frozenset("DZ BH DJ EG IR IQ JO KW LB LY MA OM PS QA SA SO SY TN AE YE".split()),
    # Asia and the Pacific
    "AP": frozenset(
        "AF AU BD BT BN KH CN FJ IN ID JP KI KP KR LA MY MV MH FM MN MM NR NP NZ PK PW PG PH WS SB LK TH "
        "TL TO TV VU VN".split()
    ),
    # Western and Central Europe and North America
    "WCENA": frozenset(
        "AT BE BG CA HR CY CZ DK EE FI FR DE GR HU IS IE IL IT LV LT LU MT NL NO PL PT RO SK SI ES SE CH "
        "TR GB US".split()
    ),
}


def countries_of(regions: tuple[str, ...] | list[str]) -> set[str]:
    """The union of the regions' countries; KeyError names an unknown region."""
    out: set[str] = set()
    for region in regions:
        key = region.upper()
        if key not in REGIONS:
            raise KeyError(f"unknown region {region!r}; regions: {', '.join(sorted(REGIONS))}")
        out |= REGIONS[key]
    return out
