// 召回与实验: the recall report (`siyu recall report`), the lift against the holdout drawn with its
// 95 % interval, 样本不足 where either arm is below min_sample.
import { useState } from "preact/hooks";
import { ChartBox } from "../chart.jsx";
import { pct, yuan } from "../format.js";
import { Status, useApi } from "../hooks.jsx";
import { Table } from "../table.jsx";

function LiftChart({ rows, minSample }) {
  const labels = rows.map((r) => `${r.stage} · ${r.store_name}${r.lift ? "" : "（样本不足）"}`);
  const config = {
    type: "bar",
    data: {
      labels,
      datasets: [
        {
          type: "bar",
          label: "95% 区间（百分点）",
          data: rows.map((r) => (r.lift ? [100 * r.lift.low, 100 * r.lift.high] : null)),
          backgroundColor: "rgba(10,125,90,0.25)",
          borderColor: "#0a7d5a",
          borderWidth: 1,
          barThickness: 14,
        },
        {
          type: "line",
          label: "提升（百分点）",
          data: rows.map((r) => (r.lift ? 100 * r.lift.value : null)),
          showLine: false,
          pointRadius: 6,
          backgroundColor: "#0a7d5a",
          borderColor: "#0a7d5a",
          indexAxis: "y",
        },
      ],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { position: "bottom" } },
      scales: {
        x: {
          title: { display: true, text: "回流率差（发送组 − 对照组），百分点" },
          grid: { color: (c) => (c.tick && c.tick.value === 0 ? "#52606d" : "#e4ebe7") },
        },
      },
    },
  };
  const measured = rows.filter((r) => r.lift).length;
  return (
    <section class="card">
      <h2>提升与区间</h2>
      {measured === 0 ? (
        <p class="muted">每组样本都不足 {minSample} 人，暂不画提升。</p>
      ) : (
        <ChartBox config={config} height={Math.max(160, 40 * rows.length + 60)} label="召回提升及其95%区间" />
      )}
      <p class="small muted">区间跨过 0 表示不显著；样本不足的行不画。</p>
    </section>
  );
}

// The A/B tests of experiments.json (`siyu experiments report`): per metric and arm against the
// baseline, the lift with its 95 % interval, the p-value and the verdict; for ops (chain-wide).
const METRIC = { conversion: "转化率", redemption: "核销率", order_value: "客单价" };

function liftText(r) {
  if (r.lift === undefined) return "—";
  const scale = r.metric === "order_value" ? 1 : 100;
  const unit = r.metric === "order_value" ? "元" : "pt";
  const f = (x) => `${x > 0 ? "+" : ""}${(scale * x).toFixed(1)}${unit}`;
  return `${f(r.lift)} [${f(r.low)}, ${f(r.high)}]`;
}

function Experiments() {
  const state = useApi("experiments");
  const data = state.data;
  return (
    <section class="card" data-test="experiments">
      <h2>A/B 实验</h2>
      <Status state={state} />
      {data && !data.enabled && <p class="muted">实验未启用（experiments.json enabled）。</p>}
      {data &&
        data.experiments.map((e) => (
          <div key={e.name}>
            <h3>
              {e.title}（{e.name}）
            </h3>
            <p class="small muted">
              已曝光 {Object.entries(e.exposed).map(([g, n]) => `${g === "holdout" ? "对照组" : g} ${n}`).join("、") || "0"}
              ；计划每组 {Object.values(e.plan.per_group)[0]} 人，需 {e.plan.days_needed} 天
              {e.polluted ? `；${e.polluted} 人同时处于 ${e.polluted_at} 个以上实验` : ""}
            </p>
            <Table
              rows={e.results}
              cols={[
                ["指标", (r) => METRIC[r.metric] || r.metric],
                ["组", (r) => `${r.arm} 对 ${r.baseline === "holdout" ? "对照组" : r.baseline}`],
                ["样本", (r) => (r.n_arm === undefined ? "—" : `${r.n_arm} / ${r.n_base}`)],
                ["提升（95%区间）", liftText],
                ["p 值", (r) => (r.p_value === undefined ? "—" : r.p_value.toPrecision(2))],
                ["结论", (r) => r.verdict],
              ]}
              empty="还没有结束转化窗口的曝光。"
            />
          </div>
        ))}
    </section>
  );
}

export function Recall({ me }) {
  const [days, setDays] = useState(30);
  const state = useApi(`recall?days=${days}`);
  const data = state.data;
  return (
    <div>
      <div class="toolbar">
        <select value={days} onChange={(e) => setDays(Number(e.currentTarget.value))} aria-label="时间窗" name="days">
          {[7, 30, 90].map((d) => (
            <option value={d} key={d}>
              近{d}天
            </option>
          ))}
        </select>
      </div>
      <Status state={state} />
      {data && (
        <>
          <section class="card">
            <h2>
              召回效果 {data.since} 至 {data.until}
            </h2>
            <p class="small muted">对照组 = 随机留出、不发送的会员；每组至少 {data.min_sample} 人才计算提升。</p>
            <Table
              rows={data.rows}
              cols={[
                ["阶段", (r) => r.stage],
                ["门店", (r) => r.store_name],
                ["到期", (r) => r.due],
                ["跳过", (r) => r.skipped],
                ["已发送", (r) => r.treated],
                ["对照组", (r) => r.holdout],
                ["回流(发送)", (r) => `${r.returned_treated} (${pct(r.rate_treated)})`],
                ["回流(对照)", (r) => `${r.returned_holdout} (${pct(r.rate_holdout)})`],
                ["提升（95%区间）", (r) => <span class={r.lift ? "" : "muted"}>{r.lift_text}</span>],
                ["核销", (r) => r.redeemed],
                ["每回流成本", (r) => (r.cost_per_return_fen === null ? "—" : yuan(Math.round(r.cost_per_return_fen)))],
              ]}
              empty="该期间没有到期会员。"
            />
          </section>
          <LiftChart rows={data.rows} minSample={data.min_sample} />
        </>
      )}
      {me && me.role === "ops" && <Experiments />}
    </div>
  );
}
