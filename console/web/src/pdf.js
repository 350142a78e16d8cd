// The PDF, drawn into canvases by pdf.js (Mozilla's pdfjs-dist) in a module
// worker served from /assets: it shows in every browser, phones included, and
// needs no plugin. Scripts inside a PDF never run (pdf.js does not execute them
// unless enableScripting is set, and it is not).
import { GlobalWorkerOptions, getDocument } from "pdfjs-dist";

GlobalWorkerOptions.workerSrc = "/assets/pdf.worker.mjs";

export async function renderPDF(container, data) {
  const doc = await getDocument({ data, isEvalSupported: false, enableXfa: false }).promise;
  const canvases = [];
  const width = Math.max(container.clientWidth - 4, 300);
  for (let n = 1; n <= doc.numPages; n++) {
    const page = await doc.getPage(n);
    const base = page.getViewport({ scale: 1 });
    const scale = width / base.width;
    const ratio = window.devicePixelRatio || 1;
    const vp = page.getViewport({ scale: scale * ratio });
    const canvas = document.createElement("canvas");
    canvas.width = Math.floor(vp.width);
    canvas.height = Math.floor(vp.height);
    canvas.style.width = Math.floor(vp.width / ratio) + "px";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `PDF page ${n} of ${doc.numPages}`);
    canvas.className = "pdf-page";
    await page.render({ canvasContext: canvas.getContext("2d"), viewport: vp, canvas }).promise;
    canvases.push(canvas);
  }
  container.replaceChildren(...canvases);
  container.dataset.pages = String(doc.numPages);
  await doc.destroy();
}
