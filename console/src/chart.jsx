// A chart drawn by Chart.js (chartjs.js, its own chunk, fetched the first time a chart shows).
import { useEffect, useRef } from "preact/hooks";

let loading = null;
const chartJs = () => (loading = loading || import("./chartjs.js"));

export function ChartBox({ config, height = 220, label }) {
  const canvas = useRef(null);
  const key = JSON.stringify(config);
  useEffect(() => {
    let chart = null;
    let live = true;
    chartJs().then(({ Chart }) => {
      if (!live) return;
      chart = new Chart(canvas.current, { ...config, options: { maintainAspectRatio: false, ...config.options } });
      canvas.current.dataset.drawn = "yes";
    });
    return () => {
      live = false;
      if (chart) chart.destroy();
    };
  }, [key]);
  return (
    <div class="chart" style={{ height: `${height}px` }}>
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}
