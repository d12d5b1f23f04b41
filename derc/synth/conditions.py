"""Labels -> physiological parameters -> beat templates (the heart vector's wave components).

``sample_heart`` draws a person (rate, intervals, axis, voltages) and applies each label's signs.
``variants`` pins sub-types, e.g. ``{"CD": "LBBB", "MI": "inferior", "HYP": "LVH"}``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from derc.synth.beats import Comp, Template, gauss, shape
from derc.synth.dipole import DOWER, LEAD_INDEX, frontal_direction, perturbed_dower, vector_to_leads
from derc.synth.rhythm import Rhythm

VARIANTS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "CD": (("LAFB", "AVB1", "RBBB", "LBBB", "IRBBB"), (0.28, 0.22, 0.2, 0.15, 0.15)),
    "HYP": (("LVH", "RVH", "LAE", "RAE"), (0.78, 0.12, 0.06, 0.04)),
    "MI": (("anterior", "inferior", "lateral"), (0.45, 0.4, 0.15)),
    "STTC": (("ST", "T", "ST+T", "LQT"), (0.3, 0.35, 0.25, 0.1)),
    "AFIB/AFL": (("AF", "AFL"), (0.88, 0.12)),
    "TACHY": (("sinus", "SVT"), (0.9, 0.1)),
}
#: Leads showing each MI territory, and the reciprocal ones.
TERRITORY = {
    "anterior": (("V1", "V2", "V3", "V4"), ("II", "III", "aVF")),
    "inferior": (("II", "III", "aVF"), ("I", "aVL")),
    "lateral": (("I", "aVL", "V5", "V6"), ("III", "aVF")),
}
_INJURY = {"anterior": (0.05, -0.35, -0.9), "inferior": (-0.3, 0.9, 0.15), "lateral": (0.8, -0.5, 0.15)}
_TERRITORY_DIR = {"anterior": (0.25, 0.1, -1.0), "inferior": (0.0, 1.0, 0.1), "lateral": (1.0, -0.35, 0.1)}
_LATERAL_INFERIOR = np.array([0.75, 0.6, -0.1]) / np.linalg.norm([0.75, 0.6, -0.1])


def _unit(v: Sequence[float]) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


@dataclass
class Heart:
    """Everything that defines one synthetic person's ECG."""

    labels: tuple[str, ...]
    age: int
    sex: str
    rhythm: Rhythm
    variants: dict[str, str]
    dower: np.ndarray
    pr: float = 0.16
    p_dur: float = 0.1
    p_amp: float = 0.12
    qrs: float = 0.09
    qtc: float = 0.41
    axis: float = 45.0
    amp: float = 1.3
    zf: float = 0.35
    t_amp: float = 0.35
    conduction: str = "normal"
    atrial: str = "normal"
    f_amp: float = 0.0
    resp_rot: float = 3.0
    amp_mod: float = 0.04
    templates: dict[str, Template] = field(default_factory=dict)

    @property
    def qt_nominal(self) -> float:
        return self.qtc * np.sqrt(60.0 / self.rhythm.hr)


def _pick(key: str, variants: Mapping[str, str], rng: np.random.Generator) -> str:
    names, probs = VARIANTS[key]
    if key in variants:
        if variants[key] not in names:
            raise ValueError(f"unknown {key} variant {variants[key]!r}; choose from {names}")
        return variants[key]
    return str(rng.choice(names, p=probs))


def _rhythm(labels: set[str], variants: dict[str, str], age: int, rng: np.random.Generator) -> Rhythm:
    r = Rhythm(resp_hz=rng.uniform(0.15, 0.35), rsa=rng.uniform(0.01, 0.045) * (1.4 if age < 40 else 1.0))
    r.hr = float(np.clip(rng.normal(73, 11), 61, 98))
    if "AFIB/AFL" in labels:
        variants["AFIB/AFL"] = kind = _pick("AFIB/AFL", variants, rng)
        r.hr = float(np.clip(rng.normal(88, 20), 55, 140))
        if kind == "AF":
            r.kind, r.af_sigma = "af", rng.uniform(0.16, 0.3)
        else:
            r.kind, r.flutter_rate = "flutter", rng.uniform(250, 340)
            r.conduction = int(rng.choice([2, 3, 4, 0], p=[0.35, 0.1, 0.3, 0.25]))
            r.hr = r.flutter_rate / (r.conduction or 3)
    elif "TACHY" in labels:
        variants["TACHY"] = kind = _pick("TACHY", variants, rng)
        r.hr = rng.uniform(150, 220) if kind == "SVT" else 100 + rng.gamma(2.0, 12.0) + 2
        r.kind, r.rsa = ("svt" if kind == "SVT" else "sinus"), rng.uniform(0.003, 0.012)
        r.hr = float(min(r.hr, 220 if kind == "SVT" else 165))
    elif "BRADY" in labels:
        r.hr, r.rsa = rng.uniform(38, 58), r.rsa * 1.3
    if "PAC" in labels and r.kind == "sinus":
        r.pac = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
    if "PVC" in labels:
        r.pvc = -1 if rng.random() < 0.12 else int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    return r


def _base(h: Heart, rng: np.random.Generator) -> None:
    young, female = h.age < 40, h.sex == "Female"
    h.pr = rng.uniform(0.13, 0.19) - (0.015 if h.rhythm.hr > 100 else 0.0)
    h.p_dur, h.p_amp = rng.uniform(0.08, 0.11), rng.uniform(0.08, 0.16)
    h.qrs = rng.uniform(0.075, 0.105) - (0.005 if female else 0.0)
    h.qtc = float(np.clip(rng.normal(0.41, 0.017), 0.37, 0.445))
    h.axis = float(np.clip(rng.normal(45 if young else 30, 25), -25, 88))
    h.amp = rng.uniform(0.95, 1.75) * (1.12 if young else 1.0) * (0.88 if female else 1.0)
    h.zf = rng.uniform(0.2, 0.55)
    h.t_amp = rng.uniform(0.25, 0.55) * (0.85 if female else 1.0)
    h.resp_rot, h.amp_mod = rng.uniform(1.5, 6.0), rng.uniform(0.015, 0.06)


def _apply_cd_hyp(h: Heart, labels: set[str], rng: np.random.Generator) -> None:
    if "CD" in labels:
        kind = h.variants["CD"] = _pick("CD", h.variants, rng)
        if kind == "AVB1":
            h.pr = rng.uniform(0.215, 0.32)
        elif kind == "LAFB":
            h.axis, h.qrs, h.conduction = rng.uniform(-80, -48), rng.uniform(0.09, 0.115), "LAFB"
            h.amp *= 1.3  # keep precordial voltages up while the frontal vector turns superior
        elif kind == "LBBB":
            h.qrs, h.conduction, h.amp = rng.uniform(0.13, 0.17), "LBBB", h.amp * rng.uniform(1.1, 1.4)
        elif kind == "RBBB":
            h.qrs, h.conduction = rng.uniform(0.125, 0.155), "RBBB"
        else:
            h.qrs, h.conduction = rng.uniform(0.1, 0.117), "IRBBB"
    if "HYP" in labels:
        kind = h.variants["HYP"] = _pick("HYP", h.variants, rng)
        if kind == "LVH":
            h.zf = rng.uniform(0.45, 0.8)
            h.axis -= rng.uniform(0, 20) if h.conduction != "LAFB" else 0.0
            h.qrs = max(h.qrs, rng.uniform(0.09, 0.11))
            h.atrial = "LAE" if rng.random() < 0.3 else h.atrial
        elif kind == "RVH":
            h.axis, h.zf, h.amp = rng.uniform(100, 150), rng.uniform(-0.9, -0.45), rng.uniform(1.0, 1.7)
            h.atrial = "RAE" if rng.random() < 0.5 else h.atrial
        else:
            h.atrial = kind
    if h.atrial == "LAE":
        h.p_dur = rng.uniform(0.12, 0.14)
    elif h.atrial == "RAE":
        h.p_amp = rng.uniform(0.2, 0.28)


def _p_waves(h: Heart, rng: np.random.Generator) -> list[Comp]:
    start, dur, a = -h.pr, h.p_dur, h.p_amp
    ra, la = np.array([0.25, 0.8, -0.45]), np.array([0.65, 0.45, 0.45])
    la_gain, la_pos = (1.6, 0.72) if h.atrial == "LAE" else (1.0, 0.62)
    ra_gain = 2.0 if h.atrial == "RAE" else 1.0
    sig = dur / (7.0 if h.atrial == "LAE" else 6.5)
    return [
        gauss(start + 0.36 * dur, sig, a * ra_gain * ra * rng.uniform(0.8, 1.2), "p"),
        gauss(start + la_pos * dur, sig, a * la_gain * la * rng.uniform(0.8, 1.2), "p"),
    ]


def _qrs(h: Heart, rng: np.random.Generator) -> list[Comp]:
    d, m = h.qrs, h.amp
    xy = frontal_direction(h.axis)
    main = m * np.array([xy[0], xy[1], h.zf])
    sep = rng.uniform(0.12, 0.3) * (1.0 if h.age < 60 else 0.8)
    term = rng.uniform(0.15, 0.45)
    if h.conduction == "LBBB":
        return [
            gauss(0.15 * d, 0.1 * d, 0.35 * m * _unit([0.7, 0.15, 0.7]), "qrs"),
            gauss(0.4 * d, 0.13 * d, m * _unit([0.75, 0.25, 0.75]), "qrs"),
            gauss(0.72 * d, 0.12 * d, 0.95 * m * _unit([0.85, 0.05, 0.9]), "qrs"),
        ]
    if h.conduction in ("RBBB", "IRBBB"):
        r_prime = rng.uniform(0.5, 1.0) if h.conduction == "RBBB" else rng.uniform(0.3, 0.55)
        return [
            gauss(0.1 * d, 0.055 * d, sep * _unit([-0.45, 0.25, -0.85]), "qrs"),
            gauss(0.32 * d, 0.1 * d, main, "qrs"),
            gauss(0.75 * d, 0.12 * d, r_prime * _unit([-0.55, 0.05, -0.85]), "qrs"),
        ]
    septal = _unit([-0.3, 0.8, -0.4]) if h.conduction == "LAFB" else _unit([-0.45, 0.25, -0.85])
    return [
        gauss(0.14 * d, 0.075 * d, sep * septal, "qrs"),
        gauss(0.45 * d, 0.12 * d, main, "qrs"),
        gauss(0.72 * d, 0.09 * d, term * _unit([-0.5, -0.45, 0.75]), "qrs"),
    ]


def _repol(h: Heart, qrs: list[Comp], rng: np.random.Generator) -> list[Comp]:
    """T wave (and a small physiological anterior ST lift) for the conducted beat."""
    qt = h.qt_nominal
    stretch = float(np.clip((qt - h.qrs) / 0.3, 0.6, 1.4))
    sig_l, sig_r = rng.uniform(0.05, 0.072) * stretch, rng.uniform(0.034, 0.046) * stretch
    tc = max(qt - 2.2 * sig_r, h.qrs + 0.6 * sig_l)
    if h.conduction == "LBBB":
        mean = sum(c.vec for c in qrs)
        t_vec = -h.t_amp * rng.uniform(1.0, 1.6) * _unit(mean)
        st_vec = -rng.uniform(0.08, 0.16) * _unit(mean) * h.amp
    else:
        txy = frontal_direction(float(np.clip(h.axis + rng.normal(0, 12), 20, 65)))  # T upright in I and II
        t_vec = h.t_amp * np.array([txy[0], txy[1], rng.uniform(-0.45, -0.05)])
        if h.conduction in ("RBBB", "IRBBB"):
            t_vec = t_vec + h.t_amp * np.array([0.1, 0.0, rng.uniform(0.4, 0.7)])
        if h.variants.get("HYP") == "RVH":
            t_vec = t_vec + h.t_amp * np.array([0.0, 0.0, rng.uniform(0.6, 1.0)])
        young_male = h.age < 45 and h.sex == "Male"
        st_vec = np.array([0.0, -0.1, -1.0]) * rng.uniform(0.0, 0.07 if young_male else 0.03)
    return [Comp(tc, sig_l, sig_r, t_vec, 0.0, True, "t"), _st(h.qrs, tc, sig_r, st_vec)]


def _st(j: float, tc: float, sig_r: float, vec: np.ndarray, end: float | None = None) -> Comp:
    """Plateau from the J point to the T peak (or ``end``), rising quickly at J."""
    stop = tc if end is None else end
    half = max((stop - j) / 2 - 0.008, 0.0)
    return Comp((j + stop) / 2, 0.01, sig_r, np.asarray(vec, dtype=float), half, True, "st")


def _project_peak(tpl: Template, kinds: set[str], dower: np.ndarray) -> np.ndarray:
    """Clean 12-lead waveform of the chosen component kinds over the beat, 1 kHz, (T, 12)."""
    t = np.arange(-0.05, tpl.qrs + 0.06, 0.001)[:, None]
    comps = [c for c in tpl.comps if c.kind in kinds]
    if not comps:
        return np.zeros((t.size, 12))
    w = shape(t, *(np.array([getattr(c, f) for c in comps]) for f in ("center", "sig_l", "sig_r", "flat")))
    return vector_to_leads(w @ np.stack([c.vec for c in comps]), dower)


def sokolow(tpl: Template, dower: np.ndarray = DOWER) -> float:
    """S V1 + max(R V5, R V6) of the template's QRS, mV."""
    leads = _project_peak(tpl, {"qrs"}, dower)
    return float(-leads[:, LEAD_INDEX["V1"]].min() + leads[:, [LEAD_INDEX["V5"], LEAD_INDEX["V6"]]].max())


def _scale_qrs(tpl: Template, factor: float) -> None:
    for c in tpl.find("qrs"):
        c.vec = c.vec * factor


def _old_mi(h: Heart, tpl: Template, territory: str, rng: np.random.Generator) -> None:
    u = _unit(_TERRITORY_DIR[territory])
    for c in tpl.find("qrs"):
        proj = float(c.vec @ u)
        if proj > 0:
            c.vec = c.vec - rng.uniform(0.85, 1.0) * proj * u
    d = tpl.qrs
    tpl.comps.append(gauss(0.3 * d, 0.15 * d, -rng.uniform(0.55, 0.9) * h.amp * u, "qrs"))
    if rng.random() < 0.7:
        for c in tpl.find("t"):
            c.vec = c.vec - (float(c.vec @ u) + rng.uniform(0.1, 0.3) * h.t_amp) * u


def _acute_mi(h: Heart, tpl: Template, territory: str, rng: np.random.Generator) -> None:
    u = _unit(_INJURY[territory])
    leads = vector_to_leads(u, h.dower)
    own = np.sort([leads[LEAD_INDEX[name]] for name in TERRITORY[territory][0]])[::-1]
    target = rng.uniform(0.22, 0.45) if territory == "anterior" else rng.uniform(0.15, 0.35)
    e = target / max(own[1], 0.05)
    (t,) = tpl.find("t")
    tpl.comps = [c for c in tpl.comps if c.kind != "st"]
    tpl.comps.append(_st(tpl.qrs, t.center, t.sig_r, e * u))
    t.vec = t.vec * rng.uniform(1.0, 1.3) + rng.uniform(0.6, 1.4) * e * u


def _st_depression(h: Heart, tpl: Template, target: float, rng: np.random.Generator, lateral: bool = False) -> None:
    u = -_LATERAL_INFERIOR if not lateral else -_unit([1.0, -0.05, 0.05])
    leads = vector_to_leads(u, h.dower)
    watch = [LEAD_INDEX[name] for name in ("I", "II", "aVF", "V4", "V5", "V6")]
    e = target / max(-leads[watch].min(), 0.05)
    (t,) = tpl.find("t")
    end = tpl.qrs + rng.uniform(0.1, 0.16)
    tpl.comps = [c for c in tpl.comps if c.kind != "st"]
    tpl.comps.append(_st(tpl.qrs, t.center, t.sig_r, e * u, end=min(end, t.center)))


def _sttc(h: Heart, tpl: Template, kind: str, rng: np.random.Generator) -> None:
    if "ST" in kind:
        _st_depression(h, tpl, rng.uniform(0.08, 0.25), rng)
    if kind in ("T", "ST+T"):
        (t,) = tpl.find("t")
        if rng.random() < 0.4:
            t.vec = t.vec * rng.uniform(0.0, 0.2)
        else:
            t.vec = -t.vec * rng.uniform(0.4, 0.9)
            t.sig_l = t.sig_r = (t.sig_l + t.sig_r) / 2


def _pvc_template(h: Heart, rng: np.random.Generator) -> Template:
    d = rng.uniform(0.13, 0.18)
    base = np.array([0.6, 0.6, 0.6]) if rng.random() < 0.6 else np.array([-0.5, 0.3, -0.7])
    u1 = _unit(base + rng.normal(0, 0.35, 3))
    u2 = _unit(u1 + rng.normal(0, 0.4, 3))
    a = rng.uniform(1.2, 2.4)
    mean = _unit(u1 + u2)
    tc = d + rng.uniform(0.17, 0.24)
    comps = [
        gauss(0.32 * d, 0.17 * d, a * u1, "qrs"),
        gauss(0.68 * d, 0.16 * d, 0.8 * a * u2, "qrs"),
        Comp(tc, 0.08, 0.05, -0.3 * a * mean, 0.0, True, "t"),
        _st(d, tc, 0.05, -0.08 * a * mean),
    ]
    return Template(comps, d)


def build_templates(h: Heart, labels: set[str], rng: np.random.Generator) -> dict[str, Template]:
    qrs = _qrs(h, rng)
    n_tpl = Template(qrs + _repol(h, qrs, rng), h.qrs)
    hyp = h.variants.get("HYP")
    if hyp == "LVH":
        _scale_qrs(n_tpl, rng.uniform(3.9, 5.6) / max(sokolow(n_tpl, h.dower), 0.1))
        if rng.random() < 0.45:
            _st_depression(h, n_tpl, rng.uniform(0.05, 0.15), rng, lateral=True)
            (t,) = n_tpl.find("t")
            t.vec = t.vec - (float(t.vec @ _unit([1, 0, 0])) + rng.uniform(0.1, 0.25)) * _unit([1, 0.1, 0.0])
    elif h.conduction != "LBBB" and sokolow(n_tpl, h.dower) > 3.3:
        _scale_qrs(n_tpl, rng.uniform(2.4, 3.3) / sokolow(n_tpl, h.dower))
    for kind in ("Old MI", "Acute MI"):
        if kind in labels:
            territory = h.variants.get(kind) or _pick("MI", h.variants, rng)
            h.variants[kind] = territory
            (_old_mi if kind == "Old MI" else _acute_mi)(h, n_tpl, territory, rng)
    if "STTC" in labels:
        _sttc(h, n_tpl, h.variants["STTC"], rng)
    templates = {"n": n_tpl, "N": Template(_p_waves(h, rng) + copy.deepcopy(n_tpl.comps), h.qrs)}
    if h.rhythm.pac:
        pr = rng.uniform(0.1, 0.16)
        p_vec = h.p_amp * rng.uniform(0.8, 1.3) * _unit(np.array([0.2, -0.9, 0.1]) + rng.normal(0, 0.25, 3))
        templates["A"] = Template([gauss(-pr + 0.05, 0.014, p_vec, "p"), *copy.deepcopy(n_tpl.comps)], h.qrs)
    if h.rhythm.pvc:
        templates["V"] = _pvc_template(h, rng)
    return templates


def sample_heart(
    labels: Sequence[str],
    rng: np.random.Generator,
    *,
    age: int | None = None,
    sex: str | None = None,
    variants: Mapping[str, str] | None = None,
) -> Heart:
    """Draw a person with the given labels' signs; ``variants`` pins sub-types (see VARIANTS)."""
    label_set = set(labels)
    age = int(np.clip(rng.normal(60, 17), 18, 95)) if age is None else int(age)
    sex = ("Male" if rng.random() < 0.52 else "Female") if sex is None else sex
    chosen = dict(variants or {})
    if "MI" in chosen:
        chosen.setdefault("Old MI", chosen["MI"])
        chosen.setdefault("Acute MI", chosen["MI"])
    h = Heart(tuple(labels), age, sex, _rhythm(label_set, chosen, age, rng), chosen, perturbed_dower(rng))
    _base(h, rng)
    if "STTC" in label_set:
        chosen["STTC"] = _pick("STTC", chosen, rng)
        if chosen["STTC"] == "LQT":
            h.qtc = rng.uniform(0.475, 0.56)
    _apply_cd_hyp(h, label_set, rng)
    if h.rhythm.kind == "af":
        h.f_amp = rng.uniform(0.025, 0.09)
    elif h.rhythm.kind == "flutter":
        h.f_amp = rng.uniform(0.1, 0.22)
    h.templates = build_templates(h, label_set, rng)
    return h
