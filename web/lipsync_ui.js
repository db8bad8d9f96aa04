// Shows the LipSync nodes' status text on the node and a warning toast when no face was found.
// The nodes send it as their "ui" output: {text: [line], lipsync_warning: [message]} (see lipsync/faces/report.py).
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const STATUS = "lipsync_status";

function showStatus(node, text) {
  let widget = node.widgets?.find((w) => w.name === STATUS);
  if (!widget) {
    widget = ComfyWidgets.STRING(node, STATUS, ["STRING", { multiline: true }], app).widget;
    widget.element.readOnly = true;
    widget.element.rows = 2;
    widget.serialize = false;
  }
  widget.value = text;
  node.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "LipSync.StatusText",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name?.startsWith("LipSync")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (message?.text?.length) showStatus(this, message.text.join("\n"));
      if (message?.lipsync_warning?.length) {
        app.extensionManager?.toast?.add({
          severity: "warn",
          summary: `${this.title}: no face found`,
          detail: message.lipsync_warning[0],
          life: 15000,
        });
      }
    };
  },
});
