"""The dock widget's parameter fields, built from :meth:`SegmentationParams.specs`.

One field per parameter whose spec has ``gui`` hints: a ComboBox for
``choices``, a SpinBox for a whole-number default, a FloatSpinBox otherwise;
label, range and step from ``spec.gui``, tooltip from ``spec.help`` and
``spec.applies_text``, first value from ``spec.default``.

Five parameters take a word as well as a number, and are compound controls: a
checkbox for the word beside the number field (:data:`COMPOUNDS`), or a
choice of several (``low_threshold``: auto, none or a level). A mask
layer replaces the threshold, seed points replace the number of segments:
then the compound is disabled. A field whose spec says when it applies
(``applies_text``) is enabled only where ``spec.applies`` holds for the
current parameters; a compound with such a spec is shown only then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox
from magicgui.widgets.bases import ValueWidget

from ..core.auto import AutoConfig
from ..core.params import DEFAULT_SENSITIVITY, ParameterSpec, SegmentationParams, is_integer

__all__ = ["COMPOUNDS", "Compound", "ParameterForm", "field_name", "initial_value", "make_field", "tooltip"]

# Today's sub-widget name where it is not the parameter's (scripts and docs use it).
FIELD_NAMES = {"random_state": "seed"}
# Fields whose 0 means off, which a run takes as None (sigma: no smoothing;
# edge_level: the threshold's edges are kept).
OFF_AT_ZERO = ("sigma", "edge_level")
# What a field shows for a parameter whose tool default is None (a field
# cannot show None): the value a run then uses.
SHOWN_FOR_NONE = {"sensitivity": DEFAULT_SENSITIVITY, "sigma": 0.0}
# Stands in for the seed points when deciding which fields apply: the points
# are read only when a run starts (they depend on the frame shown).
SEED_POINTS = ()
# Compound choices that stand for its number field's value, and for None
# (magicgui's `changed` is never emitted for a choice whose value is None).
NUMBER = "number"
NONE = "none"


@dataclass(frozen=True)
class Compound:
    """A checkbox that stands for a word of a parameter, beside the parameter's number field.

    Attributes
    ----------
    parameter, word : str
        Ticked, the parameter is ``word``; unticked, the number field's value.
    name, text, tooltip : str
        The checkbox's sub-widget name, text and tooltip.
    number_tooltip : str
        The number field's tooltip.
    replaced_by : {"mask", "seeds"} or None
        The layer choice that replaces the parameter: the compound is then disabled.
    number_range : dict
        The number field's range where the spec's ``gui`` gives none.
    options : tuple of (text, value)
        Instead of a checkbox, a choice of these (``text`` its label): each
        ``value`` is the parameter's, :data:`NONE` None, :data:`NUMBER` the number field's.
    """

    parameter: str
    word: str
    name: str
    text: str
    tooltip: str
    number_tooltip: str
    replaced_by: str | None
    number_range: dict = field(default_factory=dict)
    options: tuple = ()


COMPOUNDS = (
    Compound(
        parameter="threshold",
        word="auto",
        name="auto_threshold",
        text="Otsu threshold",
        tooltip="Without a mask, segment pixels above Otsu's threshold.",
        number_tooltip="Without a mask, segment pixels brighter than this. "
        "Set it below the image minimum to use the whole image.",
        replaced_by="mask",
        # A threshold is in the image's units: any number.
        number_range=dict(min=-1e12, max=1e12, step=0.01),
    ),
    Compound(
        parameter="n_clusters",
        word="auto",
        name="auto_segments",
        text="Auto: decide per object",
        tooltip="Split each piece of the mask where it holds touching objects "
        "(necks, dark seams), keep it whole where it is one object.",
        number_tooltip="Number of segments (each separate piece of the mask gets at least one).",
        replaced_by="seeds",
    ),
    Compound(
        parameter="min_size",
        word="auto",
        name="auto_min_size",
        text="Auto min size",
        tooltip="Leave out pieces smaller than a tenth of the typical object, measured on the image.",
        number_tooltip="Pieces of the mask smaller than this many pixels are left out.",
        replaced_by=None,
    ),
    Compound(
        parameter="sigma",
        word="auto",
        name="auto_sigma",
        text="Auto smoothing",
        tooltip="Auto mode: smooth by the width the image's noise, texture and object size call for "
        "(the value used is shown after a run).",
        number_tooltip="Gaussian smoothing before the mask and the graph, in pixels; 0 = none.",
        replaced_by=None,
    ),
    Compound(
        parameter="low_threshold",
        word="auto",
        name="dim_objects",
        text="dim objects",
        tooltip="Auto mode: also find the dim objects that lie below the threshold, each standing out of "
        "the background's noise on its own (auto), down to a level you give, or none. "
        "The level used is shown after a run.",
        number_tooltip="Dim objects are found down to this level (the image's units, below the threshold).",
        replaced_by="mask",
        number_range=dict(min=-1e12, max=1e12, step=0.01),
        options=(
            (f"auto: background + {AutoConfig().dim_deviations:g} noise deviations", "auto"),
            ("none: the threshold's objects only", NONE),
            ("a level", NUMBER),
        ),
    ),
)


def field_name(parameter: str) -> str:
    """The sub-widget name of ``parameter``'s field."""
    return FIELD_NAMES.get(parameter, parameter)


def tooltip(spec: ParameterSpec) -> str:
    """A field's tooltip: the parameter's help, and when it applies."""
    text = f"{spec.help[:1].upper()}{spec.help[1:]}."
    return f"{text}\nApplies {spec.applies_text}." if spec.applies_text else text


def initial_value(spec: ParameterSpec) -> int | float | str:
    """A field's first value: the parameter's default, as a field can show it.

    None shows :data:`SHOWN_FOR_NONE`; a compound's word (the threshold's
    "otsu") leaves the number at 0 (the checkbox is ticked).
    """
    value = spec.default
    if value is None:
        return SHOWN_FOR_NONE[spec.name]
    if isinstance(value, str) and "choices" not in spec.gui:
        return 0
    return value


def _whole_number(spec: ParameterSpec) -> bool:
    return is_integer(spec.default) or bool(spec.gui.get("whole"))


def make_field(spec: ParameterSpec, compound: Compound | None = None) -> ValueWidget:
    """The field of one parameter (``spec.gui`` not None), or the number field of its compound.

    Parameters
    ----------
    spec : ParameterSpec
        The parameter.
    compound : Compound, optional
        The compound control the field belongs to (its tooltip and range).

    Returns
    -------
    ComboBox, SpinBox or FloatSpinBox
    """
    gui = spec.gui
    options = dict(
        name=field_name(spec.name),
        label=gui["label"],
        tooltip=compound.number_tooltip if compound is not None else tooltip(spec),
    )
    if "choices" in gui:
        return ComboBox(choices=list(gui["choices"]), value=spec.default, **options)
    ranges = dict(compound.number_range if compound is not None else {})
    ranges.update({key: gui[key] for key in ("min", "max", "step") if key in gui})
    if _whole_number(spec):
        return SpinBox(value=initial_value(spec), **ranges, **options)
    widget = FloatSpinBox(value=initial_value(spec), **ranges, **options)
    _show_minimum(widget, ranges.get("min"))
    return widget


def _show_minimum(widget: FloatSpinBox, minimum: float | None) -> None:
    """Give a FloatSpinBox the decimals its positive minimum needs.

    Qt rounds the range to the decimals shown (2 unless the step needs
    more): beta's minimum 0.001 became 0, a value the parameter refuses.
    """
    if not minimum or minimum <= 0:
        return
    decimals = math.ceil(-math.log10(minimum))
    if decimals > widget.native.decimals():
        widget.native.setDecimals(decimals)
        widget.min = minimum


class ParameterForm:
    """The parameter fields and the compound controls, and the rules that enable and show them.

    Attributes
    ----------
    fields : dict
        Parameter name -> its field, one per spec with ``gui`` hints.
    widgets : dict
        Sub-widget name -> widget: the fields and the compounds' checkboxes.
    """

    def __init__(self) -> None:
        specs = [spec for spec in SegmentationParams.specs() if spec.gui is not None]
        self._specs = specs
        self._compounds = {compound.parameter: compound for compound in COMPOUNDS}
        # The fields that apply only sometimes, as their specs say.
        self._conditional = [spec.name for spec in specs if spec.applies_text]
        self.fields = {spec.name: make_field(spec, self._compounds.get(spec.name)) for spec in specs}
        self.widgets = {widget.name: widget for widget in self.fields.values()}
        for compound in COMPOUNDS:
            self.widgets[compound.name] = _chooser(compound)
        self._hidden = set()  # compounds hidden while they do not apply
        self.update_enabled(uses_mask=False, seeded=False)

    def _value(self, spec: ParameterSpec):
        """The parameter as its field (and its compound's checkbox) says."""
        compound = self._compounds.get(spec.name)
        if compound is not None and self._word_chosen(compound):
            if not compound.options:
                return compound.word
            value = self.widgets[compound.name].value
            return None if value == NONE else value
        widget = self.fields[spec.name]
        if isinstance(widget, ComboBox):
            return widget.value
        number = int(widget.value) if isinstance(widget, SpinBox) else float(widget.value)
        return None if spec.name in OFF_AT_ZERO and number == 0 else number

    def parameters(
        self, *, uses_mask: bool = False, roi: bool = False, layer_parameters: Mapping | None = None
    ) -> SegmentationParams:
        """The parameters the fields give, over the defaults.

        Parameters
        ----------
        uses_mask : bool
            A mask layer (Labels) is chosen: it replaces the threshold (None).
        roi : bool
            A region of interest (Shapes) is chosen: the threshold still
            applies inside it, Otsu's being that of the region ("otsu").
        layer_parameters : mapping, optional
            The parameters the image layer decides (spacing, channel axis).

        Returns
        -------
        SegmentationParams
            Without seed points and without a time limit (``time_limit=None``). A parameter that does not apply (e.g.
            sensitivity without auto) keeps its default; its field
            keeps its value for when it applies again.
        """
        values = {spec.name: self._value(spec) for spec in self._specs}
        if uses_mask:
            values["threshold"] = None
        elif roi and values["threshold"] == "auto":
            values["threshold"] = "otsu"
        given = {name: value for name, value in values.items() if name not in self._conditional}
        # No time limit: the widget shows a run's progress and Cancel stops it,
        # so a long run asked for on purpose is not refused.
        params = SegmentationParams(**given, **(layer_parameters or {}), time_limit=None)
        return params.replace(**{name: values[name] for name in self._conditional if params.applies(name)})

    def update_enabled(self, *, uses_mask: bool, seeded: bool) -> None:
        """Enable the fields that act with the current choices.

        Parameters
        ----------
        uses_mask : bool
            A mask layer is chosen (it replaces the threshold).
        seeded : bool
            A seed-points layer is chosen (its points fix the number of segments).
        """
        replaced = {"mask": uses_mask, "seeds": seeded, None: False}
        for compound in COMPOUNDS:
            box = self.widgets[compound.name]
            box.enabled = not replaced[compound.replaced_by]
            self.fields[compound.parameter].enabled = box.enabled and not self._word_chosen(compound)
        params = self.parameters(uses_mask=uses_mask).replace(seeds=SEED_POINTS if seeded else None)
        for name in self._conditional:
            compound = self._compounds.get(name)
            if compound is None:
                self.fields[name].enabled = params.applies(name)
            else:
                self._show(compound, params.applies(name))

    def _word_chosen(self, compound: Compound) -> bool:
        """Whether the compound's checkbox (or choice) stands for a word, not the number field."""
        value = self.widgets[compound.name].value
        return value != NUMBER if compound.options else bool(value)

    def _show(self, compound: Compound, shown: bool) -> None:
        """Show or hide a compound and its number field (with their labels)."""
        if shown != (compound.name in self._hidden):
            return
        # Shown again only after this hid it: by then the form is placed in the dock
        # (a widget with no parent made visible would open as a window of its own).
        for widget in (self.widgets[compound.name], self.fields[compound.parameter]):
            widget.visible = shown
        (self._hidden.discard if shown else self._hidden.add)(compound.name)

    def show_chosen(self, metadata: dict) -> str:
        """Show the values the engine chose for 'auto' fields; return the status line's note of unusual ones.

        ``metadata`` is a result's record (``sigma_used``, ``polarity_used``...).
        """
        widgets = self.widgets
        chosen_values = (
            ("auto_sigma", "sigma", "sigma_used"),
            ("auto_min_size", "min_size", "min_size_used"),
            ("dim_objects", "low_threshold", "low_threshold_used"),
        )
        for box, field_, key in chosen_values:
            chosen = metadata.get(key)
            if widgets[box].value in (True, "auto") and chosen is not None:
                widgets[field_].value = chosen
                widgets[field_].tooltip = _with_choice(widgets[field_].tooltip, chosen)
        # Polarity and background: the choice in the tooltip, and in the status where it is not the usual one.
        noticed = []
        for field_, key, usual in (("polarity", "polarity_used", "bright"), ("background", "background_used", "flat")):
            chosen = metadata.get(key)
            if widgets[field_].value == "auto" and chosen is not None:
                widgets[field_].tooltip = _with_choice(widgets[field_].tooltip, chosen)
                if chosen != usual:
                    noticed.append(f"{key.removesuffix('_used')}: {chosen}")
        return f" ({', '.join(noticed)})" if noticed else ""


def _chooser(compound: Compound) -> CheckBox | ComboBox:
    """A compound's checkbox (ticked where the parameter's default is its word), or its choice of options."""
    default = SegmentationParams.spec(compound.parameter).default
    options = dict(name=compound.name, tooltip=compound.tooltip)
    if compound.options:
        value = NONE if default is None else default
        return ComboBox(choices=list(compound.options), value=value, label=compound.text, **options)
    return CheckBox(text=compound.text, value=default == compound.word, **options)


def _with_choice(tooltip: str, chosen) -> str:
    """A field's tooltip with the value the engine chose (replacing an earlier one)."""
    return f"{tooltip.split(' (chosen')[0]} (chosen from the image: {chosen})"
