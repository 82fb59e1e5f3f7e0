// 预警: open alerts (escalated ones marked), suppression windows, and the history.
import { when } from "../format.js";
import { Status, useApi } from "../hooks.jsx";

function AlertTable({ rows, empty }) {
  if (!rows.length) return <p class="muted">{empty}</p>;
  return (
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th>范围</th>
            <th>指标</th>
            <th>级别</th>
            <th>最近值</th>
            <th>开始</th>
            <th>升级/提醒</th>
            <th>解除</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((a) => (
            <tr key={a.alert_id} data-alert={a.alert_id}>
              <td>{a.scope_name}</td>
              <td>{a.metric}</td>
              <td>
                <span class={`badge ${a.level}`}>{a.level_name}</span>
                {a.escalated && <span class="badge red">已升级</span>}
              </td>
              <td>{a.value || "—"}</td>
              <td>{when(a.opened_at)}</td>
              <td>
                {a.escalations} / {a.reminders}
              </td>
              <td>{when(a.closed_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Alerts() {
  const state = useApi("alerts");
  const data = state.data;
  return (
    <div>
      <Status state={state} />
      {data && (
        <>
          <section class="card">
            <h2>未解除预警（{data.open.length}）</h2>
            <AlertTable rows={data.open} empty="当前没有未解除的预警。" />
          </section>
          <section class="card">
            <h2>抑制期{data.suppressed_now && <span class="badge yellow">抑制中：不开新预警</span>}</h2>
            {data.suppressed.length ? (
              <ul>
                {data.suppressed.map((w) => (
                  <li key={w.starts_at}>
                    {when(w.starts_at)} 至 {when(w.ends_at)}：{w.reason}
                    {w.now && "（进行中）"}
                  </li>
                ))}
              </ul>
            ) : (
              <p class="muted">alerts.json 未设抑制期。</p>
            )}
          </section>
          <section class="card">
            <h2>历史</h2>
            <AlertTable rows={data.history} empty="还没有已解除的预警。" />
          </section>
        </>
      )}
    </div>
  );
}
