"""The configuration editor: a form over the replication settings and every sink.

Each change is written into a ``ConfigDocument`` at once (only that key's bytes change) and the
whole document is validated with the loader, whose message is shown next to the field it names.
Save writes the file back (comments, order and ``${VAR}`` references kept); Apply hands the
validated configuration to the running engine, after a confirmation when that restarts
replication. Secrets show masked until revealed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import (
    Button,
    ContentSwitcher,
    Footer,
    Input,
    Label,
    OptionList,
    Select,
    Static,
)

from wal2http_tui.config.document import ConfigDocument, SinkEntry
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.keys import KeyPath, format_key_path
from wal2http_tui.config.model import EventSinkConfig, ReplicationConfig
from wal2http_tui.config.reference import key_help
from wal2http_tui.engine.controls import FAIL, OK, EngineControls
from wal2http_tui.tui.add_sink import AddSinkScreen, NewSink
from wal2http_tui.tui.config_fields import (
    REQUIRED,
    ROOT_FIELDS,
    SINK_FIELDS,
    FieldSpec,
    field_key,
    from_text,
    masked,
    to_text,
)
from wal2http_tui.tui.dialogs import ConfirmScreen, if_confirmed
from wal2http_tui.tui.live_static import LiveStatic
from wal2http_tui.tui.read_only import refuse_in_read_only

DIFF_STYLES = {"+": "$success", "-": "$error", "@": "$accent"}


def diff_content(diff: str) -> Content:
    """A unified diff, its added and removed lines coloured."""
    return Content("\n").join(
        Content.styled(line, DIFF_STYLES.get(line[:1], "")) for line in diff.splitlines()
    )


SECTIONS_HELP = "↑↓ a section, enter or tab its settings; each key's meaning shows here"


@dataclass(frozen=True)
class Section:
    """The replication settings (``sink`` None, path ()), or one sink's table."""

    title: str
    path: KeyPath
    specs: tuple[FieldSpec, ...]
    sink: SinkEntry | None = None

    def owns(self, key: str) -> bool:
        """Whether an error at ``key`` (as ConfigError names it) is in this section."""
        if self.sink is not None:
            return key_within(key, format_key_path(self.path))
        return any(key_within(key, spec.key) for spec in self.specs)


def key_within(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith((f"{prefix}.", f"{prefix}["))


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (``1`` is not ``true``, ``10`` is not ``10.0``)."""
    return type(a) is type(b) and a == b


def document_sections(document: ConfigDocument) -> list[Section]:
    sections = [Section("Replication", (), ROOT_FIELDS)]
    for sink in document.sinks():
        mark = "●" if sink.enabled else "○"
        title = f"{mark} {sink.name} ({sink.kind})"
        sections.append(Section(title, sink.path, SINK_FIELDS[sink.kind], sink))
    return sections


class FieldRow(Vertical):
    """A key, its control, and the line under it for the loader's message."""

    def __init__(
        self,
        spec: FieldSpec,
        path: KeyPath,
        value: Any,
        *,
        meaning: str,
        revealed: bool,
        read_only: bool,
    ) -> None:
        super().__init__(classes="field")
        self.spec = spec
        self.path = path
        self.meaning = meaning
        self.text = to_text(value)
        self.masked_text = None if revealed else masked(path, value)
        self.read_only = read_only
        self._message: tuple[str, bool] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-line"):
            yield Label(self.spec.key, classes="field-label").with_tooltip(self.meaning)
            yield self._control()
        yield Static(classes="field-message", markup=False)

    def _control(self) -> Widget:
        spec = self.spec
        if spec.kind == "choice":
            choices = list(spec.choices)
            if self.text and self.text not in choices:
                choices.append(self.text)  # as written, though the loader refuses it
            return Select(
                [(choice, choice) for choice in choices],
                value=self.text or Select.NULL,
                prompt=f"default: {spec.default}",
                compact=True,
                disabled=self.read_only,
            )
        placeholder = "required" if spec.default == REQUIRED else f"default: {spec.default}"
        return Input(
            value=self.masked_text if self.masked_text is not None else self.text,
            placeholder=placeholder,
            compact=True,
            disabled=self.read_only or self.masked_text is not None,
        )

    @property
    def help(self) -> Content:
        """What the key means and its default, for the help line while it has the focus."""
        default = "required" if self.spec.default == REQUIRED else f"default: {self.spec.default}"
        meaning = self.meaning or "(not in the reference)"
        return Content.assemble((self.spec.key, "bold"), f"  {meaning}  ", (default, "italic"))

    def show_message(self, message: str, *, error: bool) -> None:
        if not message and self.masked_text is not None:
            message, error = "masked: ctrl+r reveals it (and lets you edit it)", False
        if (message, error) == self._message:
            return  # every row is told after every keystroke; most have nothing new
        self._message = (message, error)
        line = self.query_one(".field-message", Static)
        line.update(message)
        line.set_class(error, "-error")
        line.display = bool(message)


class SectionList(OptionList):
    BINDINGS = [
        Binding(
            "space", "screen.toggle_sink", "Enable/disable", tooltip="Enable or disable the sink"
        ),
        Binding("a", "screen.add_sink", "Add sink", show=False),
        Binding("x,delete", "screen.remove_sink", "Remove", tooltip="Remove the sink (asks first)"),
    ]


class ConfigEditorScreen(Screen):
    """A form over ``document``. ``engine`` says whether applying it restarts replication,
    applies it and runs the tests; read-only shows everything and changes nothing."""

    CSS_PATH = "editor.tcss"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Save the edits to the file (validated)"),
        Binding(
            "ctrl+o", "apply", "Apply", tooltip="Hot-reload the engine (asks before a restart)"
        ),
        Binding("ctrl+t", "test", "Test", tooltip="Test the connection, or the selected sink"),
        Binding("ctrl+r", "toggle_secrets", "Secrets", tooltip="Reveal or mask the secrets"),
        Binding("ctrl+n", "add_sink", "Add sink"),
        Binding("escape", "close", "Back", tooltip="Close the editor (asks if not saved)"),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(
        self, document: ConfigDocument, engine: EngineControls, *, read_only: bool
    ) -> None:
        super().__init__()
        self.document = document
        self.engine = engine
        self.read_only = read_only
        self.revealed = False
        self.sections = document_sections(document)
        self.current = 0
        self.config: ReplicationConfig | None = None
        self.error: ConfigError | None = None
        self.parse_errors: dict[KeyPath, tuple[str, str]] = {}  # path -> (text, why)
        self.test_results: dict[KeyPath, Content] = {}

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield LiveStatic(id="editor-heading")
        with Horizontal(id="editor-body"):
            sections = SectionList(*(section.title for section in self.sections), id="sections")
            sections.border_title = "Settings"
            yield sections
            yield ContentSwitcher(id="forms")
        yield LiveStatic(SECTIONS_HELP, id="field-help")
        with Horizontal(id="editor-buttons"):
            for label, action in (
                ("Test", "test"),
                ("Save", "save"),
                ("Apply", "apply"),
                ("Add sink", "add_sink"),
                ("Remove sink", "remove_sink"),
            ):
                yield Button(label, compact=True, name=action)
        yield LiveStatic(id="editor-status")
        yield Footer(compact=True)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The help line follows the focus: the key's meaning and default, or how to move."""
        row = next((node for node in event.widget.ancestors if isinstance(node, FieldRow)), None)
        help_line = self.query_one("#field-help", LiveStatic)
        help_line.show(row.help if row is not None else Content(SECTIONS_HELP))

    async def on_mount(self) -> None:
        self._validate()
        await self._show_section(0)
        self.query_one(SectionList).focus()

    @property
    def section(self) -> Section:
        return self.sections[self.current]

    @property
    def form(self) -> VerticalScroll:
        """The current section's form."""
        return self.query_one(f"#form-{self.current}", VerticalScroll)

    @property
    def rows(self) -> list[FieldRow]:
        """The fields of the current section."""
        return list(self.form.query(FieldRow))

    async def _show_section(self, index: int) -> None:
        """Show a section's form: built on its first visit, then kept (moving through the
        sections stays instant) until ``_rebuild_forms``."""
        self.current = index
        forms = self.query_one("#forms", ContentSwitcher)
        form_id = f"form-{index}"
        if not forms.query(f"#{form_id}"):
            await forms.mount(self._build_form(self.section, form_id))
        forms.current = form_id
        self._show_validation()

    async def _rebuild_forms(self, index: int) -> None:
        """After a change of the sections (added, removed) or of what the fields show."""
        await self.query_one("#forms", ContentSwitcher).remove_children()
        await self._show_section(index)
        self.query_one(SectionList).highlighted = index

    def _build_form(self, section: Section, form_id: str) -> VerticalScroll:
        table = self.document.get(section.path, {}) if section.path else {}
        rows = []
        for spec in section.specs:
            path = (*section.path, field_key(spec, table))
            pending = self.parse_errors.get(path)
            value = pending[0] if pending else self.document.get(path, None)
            meaning = key_help(section.sink.kind if section.sink else None, spec.key)
            rows.append(
                FieldRow(
                    spec,
                    path,
                    value,
                    meaning=meaning,
                    revealed=self.revealed,
                    read_only=self.read_only,
                )
            )
        result = self.test_results.get(section.path)
        line = Static(result or "", classes="test-result")
        line.display = result is not None
        return VerticalScroll(line, *rows, id=form_id, classes="form")

    def _refresh_sections(self) -> None:
        """Titles (enabled marks, names, errors) after an edit; the list anew after add/remove."""
        self.sections = document_sections(self.document)
        options = self.query_one(SectionList)
        titles = [self._section_title(section) for section in self.sections]
        if options.option_count != len(titles):
            options.set_options(titles)
            return
        for index, title in enumerate(titles):
            shown = options.get_option_at_index(index).prompt
            if not isinstance(shown, Content) or shown.markup != title.markup:
                options.replace_option_prompt_at_index(index, title)

    def _section_title(self, section: Section) -> Content:
        keys = [format_key_path(path) for path in self.parse_errors]
        if self.error is not None and self.error.key:
            keys.append(self.error.key)
        failing = any(section.owns(key) for key in keys)
        return Content.assemble(section.title, (" ✗", "$error") if failing else "")

    # -- validation ----------------------------------------------------------------------------
    def _validate(self) -> None:
        try:
            self.config = self.document.validate()
            self.error = None
        except ConfigError as exc:
            self.config = None
            self.error = exc

    def _show_validation(self) -> None:
        error = self.error
        for row in self.query(FieldRow):
            pending = self.parse_errors.get(row.path)
            if pending is not None:
                row.show_message(pending[1], error=True)
            elif (
                error is not None and error.key and key_within(error.key, format_key_path(row.path))
            ):
                where = f"line {error.line}: " if error.line else ""
                row.show_message(f"{where}{error.message}", error=True)
            else:
                row.show_message("", error=False)
        self._refresh_sections()
        self.query_one("#editor-heading", LiveStatic).show(self._heading())
        self.query_one("#editor-status", LiveStatic).show(self._status())

    def _heading(self) -> Content:
        secrets = "secrets shown (ctrl+r masks)" if self.revealed else "secrets masked (ctrl+r)"
        parts: list[Content | str | tuple[str, str]] = [
            ("Configuration ", "bold"),
            (str(self.document.path), "bold $accent"),
            f" · {secrets}",
        ]
        if self.document.modified:
            parts.append((" · modified, not saved", "$warning"))
        if self.read_only:
            parts.insert(0, ("READ-ONLY", "reverse $warning"))
            parts.insert(1, " ")
        return Content.assemble(*parts)

    def _status(self) -> Content:
        if self.parse_errors:
            path, (_, why) = next(iter(self.parse_errors.items()))
            return Content.assemble(("✗ ", "$error"), f"{format_key_path(path)}: {why}")
        if self.error is not None:
            return Content.assemble(("✗ ", "$error"), str(self.error))
        assert self.config is not None
        warnings = self.config.warnings
        if warnings:
            more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
            return Content.assemble(
                ("✓ valid, ", "$success"), (f"⚠ {warnings[0]}{more}", "$warning")
            )
        return Content.assemble(("✓ valid", "$success"))

    # -- editing -------------------------------------------------------------------------------
    @on(Input.Changed, ".form Input")
    def _input_changed(self, event: Input.Changed) -> None:
        self._edit(event.input, event.value)

    @on(Select.Changed, ".form Select")
    def _select_changed(self, event: Select.Changed) -> None:
        self._edit(event.select, "" if event.value is Select.NULL else str(event.value))

    def _edit(self, control: Widget, text: str) -> None:
        row = next((node for node in control.ancestors if isinstance(node, FieldRow)), None)
        if row is None or row.masked_text is not None or row.read_only:
            return
        try:
            value = from_text(row.spec, text)
        except ValueError as exc:
            self.parse_errors[row.path] = (text, str(exc))
            self._show_validation()
            return
        was_pending = self.parse_errors.pop(row.path, None) is not None
        unchanged = same_value(value, self.document.get(row.path, None))
        if unchanged and not was_pending:
            return  # e.g. the control reporting its initial value
        if not unchanged:
            try:
                self.document.set(row.path, value)
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                self.parse_errors[row.path] = (text, str(exc))
        self._validate()
        self._show_validation()

    @on(OptionList.OptionHighlighted, "#sections")
    async def _section_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index != self.current:
            await self._show_section(event.option_index)

    @on(OptionList.OptionSelected, "#sections")
    def _section_selected(self) -> None:
        controls = [w for w in self.form.query("Input, Select") if w.focusable]
        if controls:
            controls[0].focus()

    @on(Button.Pressed, "#editor-buttons Button")
    async def _button(self, event: Button.Pressed) -> None:
        await self.run_action(str(event.button.name))

    # -- actions -------------------------------------------------------------------------------
    def _refuse_invalid(self, what: str) -> bool:
        if self.parse_errors or self.error is not None:
            self.notify(f"{what}: {self._status().plain.removeprefix('✗ ')}", severity="error")
            return True
        return False

    def action_save(self) -> None:
        if refuse_in_read_only(self, "Saving the configuration", read_only=self.read_only):
            return
        if self._refuse_invalid("Not saved"):
            return
        if not self.document.modified:
            self.notify("Nothing to save: the file is as it was")
            return
        secrets = "shown" if self.revealed else "masked (ctrl+r in the editor reveals them)"
        self.app.push_screen(
            ConfirmScreen(
                f"Write these changes to {self.document.path}?",
                f"The previous version is kept as {self.document.path.name}.bak; secrets are "
                f"{secrets}.",
                confirm="Write",
                listing=diff_content(self.document.pending_diff(reveal=self.revealed)),
            ),
            if_confirmed(self._save),
        )

    def _save(self) -> None:
        try:
            self.document.save()
        except ConfigError as exc:
            self.error = exc
            self._show_validation()
            self.notify(f"Not saved: {exc}", severity="error")
            return
        path = self.document.path
        self.notify(f"Saved {path} (the previous version is {path.name}.bak)")
        self._show_validation()

    def action_apply(self) -> None:
        if refuse_in_read_only(self, "Applying the configuration", read_only=self.read_only):
            return
        if self._refuse_invalid("Not applied") or self.config is None:
            return
        config = self.config
        if not self.engine.needs_restart(config):
            self.apply(config, restart=False)
            return
        self.app.push_screen(
            ConfirmScreen(
                "Apply and restart replication?",
                "The connection, slot, publication, tables or queue settings changed: the "
                "replication worker stops (sinks finish in-flight deliveries) and connects again.",
                confirm="Restart",
            ),
            if_confirmed(lambda: self.apply(config, restart=True)),
        )

    @work(group="editor-apply", exclusive=True)
    async def apply(self, config: ReplicationConfig, *, restart: bool) -> None:
        self.notify("Restarting replication…" if restart else "Reloading sinks…")
        try:
            await asyncio.to_thread(self.engine.apply, config)
        except Exception as exc:  # the engine's reason, whatever it is, for the operator
            self.notify(f"Not applied: {exc}", severity="error")
            return
        done = "replication restarted" if restart else "sinks reloaded, connection kept"
        unsaved = "; not saved to the file yet (ctrl+s)" if self.document.modified else ""
        self.notify(f"Applied: {done}{unsaved}")

    def action_test(self) -> None:
        section = self.section
        if self._refuse_invalid("Cannot test") or self.config is None:
            return
        if section.sink is None:
            self.test_connection(section.path, self.config)
            return
        sink = next(s for s in self.config.event_sinks if s.name == section.sink.name)
        self.test_sink(section.path, sink)

    @work(group="editor-test", exclusive=True)
    async def test_connection(self, path: KeyPath, config: ReplicationConfig) -> None:
        self._show_test(path, Content("Testing the connection…"))
        try:
            lines = await asyncio.to_thread(self.engine.test_connection, config)
        except Exception as exc:  # shown as the test's result
            self._show_test(path, Content.assemble(("✗ ", "$error"), str(exc)))
            return
        parts: list[Content | str | tuple[str, str]] = []
        for status, check, message in lines:
            glyph = {OK: ("✓ ", "$success"), FAIL: ("✗ ", "$error")}.get(status, ("· ", ""))
            parts += [glyph, (f"{check}: ", "bold"), message, "\n"]
        self._show_test(path, Content.assemble(*parts[:-1]))

    @work(group="editor-test", exclusive=True)
    async def test_sink(self, path: KeyPath, sink: EventSinkConfig) -> None:
        self._show_test(path, Content(f"Testing sink {sink.name}…"))
        try:
            line = await asyncio.to_thread(self.engine.test_sink, sink)
        except Exception as exc:  # test_sink raises with the reason
            self._show_test(path, Content.assemble(("✗ ", "$error"), f"{sink.name}: {exc}"))
            return
        self._show_test(path, Content.assemble(("✓ ", "$success"), line))

    def _show_test(self, path: KeyPath, result: Content) -> None:
        self.test_results[path] = result
        index = next((i for i, s in enumerate(self.sections) if s.path == path), None)
        for line in self.query(f"#form-{index} .test-result").results(Static):
            line.update(result)
            line.display = True

    async def action_toggle_secrets(self) -> None:
        self.revealed = not self.revealed
        await self._rebuild_forms(self.current)

    def action_add_sink(self) -> None:
        if refuse_in_read_only(self, "Adding a sink", read_only=self.read_only):
            return
        self.app.push_screen(AddSinkScreen(self.document), self._add_sink)

    async def _add_sink(self, new: NewSink | None) -> None:
        if new is None:
            return
        kind, values = new
        name = self.document.add_sink(kind, values)
        self._validate()
        self._refresh_sections()
        index = next(i for i, s in enumerate(self.sections) if s.sink and s.sink.name == name)
        await self._rebuild_forms(index)
        self.notify(f"Sink {name} added; ctrl+s saves, ctrl+o applies")

    def action_remove_sink(self) -> None:
        if refuse_in_read_only(self, "Removing a sink", read_only=self.read_only):
            return
        sink = self.section.sink
        if sink is None:
            self.notify("Select a sink to remove", severity="warning")
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Remove sink {sink.name} ({sink.kind}) from the file?",
                "Its table and the comment lines above it are removed when you save.",
                confirm="Remove",
            ),
            if_confirmed(lambda: self._remove_sink(sink)),
        )

    async def _remove_sink(self, sink: SinkEntry) -> None:
        self.document.remove_sink(sink.kind, sink.name)
        self._validate()
        self._refresh_sections()
        await self._rebuild_forms(min(self.current, len(self.sections) - 1))
        self.notify(f"Sink {sink.name} removed; ctrl+s saves, ctrl+o applies")

    async def action_toggle_sink(self) -> None:
        if refuse_in_read_only(self, "Enabling or disabling a sink", read_only=self.read_only):
            return
        sink = self.section.sink
        if sink is None:
            return
        self.document.set((*sink.path, "enabled"), not sink.enabled)
        self._validate()
        self._refresh_sections()
        await self._rebuild_forms(self.current)

    def action_close(self) -> None:
        if not self.document.modified:
            self.dismiss()
            return
        self.app.push_screen(
            ConfirmScreen(
                "Discard the changes that are not saved?",
                "The file stays as it is on disk.",
                confirm="Discard",
            ),
            if_confirmed(self.dismiss),
        )
