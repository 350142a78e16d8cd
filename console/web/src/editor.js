// The LaTeX editor: CodeMirror 6 with the stex (LaTeX) mode of
// @codemirror/legacy-modes, and the compile error's line highlighted.
import { basicSetup } from "codemirror";
import { EditorView, Decoration } from "@codemirror/view";
import { EditorState, StateEffect, StateField } from "@codemirror/state";
import { StreamLanguage } from "@codemirror/language";
import { stex } from "@codemirror/legacy-modes/mode/stex";

const setErrorLine = StateEffect.define();
const errorMark = Decoration.line({ class: "cm-error-line", attributes: { title: "compile error" } });

const errorLine = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (!e.is(setErrorLine)) continue;
      const n = e.value;
      deco = n > 0 && n <= tr.state.doc.lines ? Decoration.set([errorMark.range(tr.state.doc.line(n).from)]) : Decoration.none;
    }
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

export function latexEditor(parent, { onChange } = {}) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: "",
      extensions: [
        basicSetup,
        StreamLanguage.define(stex),
        errorLine,
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ "aria-label": "LaTeX source" }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged && onChange && u.transactions.some((t) => t.isUserEvent("input") || t.isUserEvent("delete") || t.isUserEvent("undo") || t.isUserEvent("redo") || t.isUserEvent("move"))) onChange();
        }),
      ],
    }),
  });
  return {
    view,
    text: () => view.state.doc.toString(),
    set(text, line) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
      this.mark(line);
    },
    mark(line) {
      view.dispatch({ effects: setErrorLine.of(line || 0) });
      if (line > 0 && line <= view.state.doc.lines) {
        view.dispatch({ effects: EditorView.scrollIntoView(view.state.doc.line(line).from, { y: "center" }) });
      }
    },
  };
}
