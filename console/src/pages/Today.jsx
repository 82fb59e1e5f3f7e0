// 今日/本周: the core KPIs (the numbers of `siyu kpis` and the weekly digest), week over week and
// against target, today so far, and the daily trend.
import { useState } from "preact/hooks";
import { ChartBox } from "../chart.jsx";
import { changeText, kpiText, yuan } from "../format.js";
import { Status, useApi } from "../hooks.jsx";

const ACTIVITY = [
  ["follows", "新增关注"],
  ["unfollows", "取关"],
  ["group_joins", "入群"],
  ["new_members", "新会员"],
  ["orders", "订单"],
  ["gmv_fen", "GMV", yuan],
  ["coupons_issued", "券发放"],
  ["coupons_redeemed", "券核销"],
  ["messages_intended", "应发消息"],
  ["messages_sent", "消息"],
  ["messages_delivered", "已送达"],
  ["messages_dropped", "未送达"],
  ["message_cost_fen", "消息花费", yuan],
  ["reviews", "评价"],
  ["reviews_negative", "差评"],
];

function isoWeek(date) {
  const d = new Date(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const yearStart = new Date(Date.UTC(d.getUTCFullYear(), 0, 1));
  const week = Math.ceil(((d - yearStart) / 86400000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

function lastWeeks(n) {
  const out = [];
  const d = new Date();
  for (let i = 1; i <= n; i++) {
    const then = new Date(d.getTime() - i * 7 * 86400000);
    out.push(isoWeek(then));
  }
  return out;
}

function KpiCard({ row }) {
  const mark = row.on_target === null ? "" : row.on_target ? "good" : "bad";
  return (
    <div class={`kpi ${mark}`} data-kpi={row.name}>
      <div class="label">{row.label}</div>
      <div class="value">{kpiText(row)}</div>
      <div class="small">{changeText(row)}</div>
      <div class="small">
        {row.target === null
          ? "未设目标"
          : `目标 ${row.target}${row.unit}${row.on_target === null ? "" : row.on_target ? " · 达标" : " · 未达标"}`}
      </div>
      <div class="small muted">样本 {row.sample}</div>
    </div>
  );
}

function Trend({ trend, kpis }) {
  const [name, setName] = useState("interaction_rate");
  const row = kpis.find((k) => k.name === name);
  const series = trend.series[name] || trend.series.follows;
  const datasets = [{ label: row ? row.label : "新增关注", data: series, borderColor: "#0a7d5a", spanGaps: true, tension: 0.2 }];
  if (row && row.target !== null)
    datasets.push({ label: "目标", data: series.map(() => row.target), borderColor: "#c2410c", borderDash: [6, 4], pointRadius: 0 });
  const config = {
    type: "line",
    data: { labels: trend.days.map((d) => d.slice(5)), datasets },
    options: { plugins: { legend: { position: "bottom" } }, scales: { y: { beginAtZero: true } } },
  };
  return (
    <section class="card">
      <h2>
        近28天趋势{" "}
        <select value={name} onChange={(e) => setName(e.currentTarget.value)} aria-label="趋势指标">
          {kpis.map((k) => (
            <option value={k.name} key={k.name}>
              {k.label}
            </option>
          ))}
          <option value="follows">新增关注</option>
        </select>
      </h2>
      <ChartBox config={config} label={`${row ? row.label : "新增关注"}的每日趋势`} />
    </section>
  );
}

export function Today({ me }) {
  const [scope, setScope] = useState(me.scopes[0] ? me.scopes[0].id : "");
  const [week, setWeek] = useState("");
  const state = useApi(`kpis?scope=${encodeURIComponent(scope)}${week ? `&week=${week}` : ""}`);
  const data = state.data;
  return (
    <div>
      <div class="toolbar">
        <select value={scope} onChange={(e) => setScope(e.currentTarget.value)} aria-label="范围" name="scope">
          {me.scopes.map((s) => (
            <option value={s.id} key={s.id}>
              {s.id === "chain" ? s.name : `${s.id} ${s.name}`}
            </option>
          ))}
        </select>
        <select value={week} onChange={(e) => setWeek(e.currentTarget.value)} aria-label="时间窗" name="week">
          <option value="">近7天（同 siyu kpis）</option>
          {lastWeeks(8).map((w) => (
            <option value={w} key={w}>
              {w}（周报）
            </option>
          ))}
        </select>
      </div>
      <Status state={state} />
      {data && (
        <>
          <section class="card">
            <h2>
              {data.window.label}：{data.window.since} 至 {data.window.until}
            </h2>
            <div class="kpis">
              {data.kpis.map((row) => (
                <KpiCard row={row} key={row.name} />
              ))}
            </div>
          </section>
          <section class="card">
            <h2>业务量（{data.window.label}，括号内为前7天）</h2>
            <div class="activity">
              {ACTIVITY.map(([key, label, fmt]) => (
                <div key={key}>
                  <span class="muted">{label}</span> <b>{fmt ? fmt(data.activity[key]) : data.activity[key]}</b>{" "}
                  <span class="small muted">({fmt ? fmt(data.activity_before[key]) : data.activity_before[key]})</span>
                </div>
              ))}
            </div>
          </section>
          <section class="card">
            <h2>今日（{data.today.date}，截至现在）</h2>
            <div class="activity">
              {data.today.kpis
                .filter((k) => data.core.includes(k.name))
                .map((k) => (
                  <div key={k.name}>
                    <span class="muted">{k.label}</span> <b>{kpiText(k)}</b>
                  </div>
                ))}
              {ACTIVITY.slice(0, 6).map(([key, label, fmt]) => (
                <div key={key}>
                  <span class="muted">{label}</span> <b>{fmt ? fmt(data.today.activity[key]) : data.today.activity[key]}</b>
                </div>
              ))}
            </div>
          </section>
          <Trend trend={data.trend} kpis={data.kpis} />
          <p class="small muted">时间按 {data.timezone}；指标口径见 siyu kpis / 周报。</p>
        </>
      )}
    </div>
  );
}
