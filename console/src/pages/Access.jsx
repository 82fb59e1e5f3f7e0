// 权限与审计: who may do what, and every change made through the console (who, what, when).
import { when } from "../format.js";
import { Status, useApi } from "../hooks.jsx";
import { Table } from "../table.jsx";

const ACTION = {
  "ticket.respond": "工单：记录响应",
  "ticket.resolve": "工单：标记已处理",
  "ticket.follow_up": "工单：完成回访",
  "rules.publish": "规则：发布",
  "rules.rollback": "规则：回滚",
  "member.erase": "会员：删除个人数据",
};
const OUTCOME = { ok: "成功", unchanged: "无变化", conflict: "冲突（未写入）", refused: "被拒绝（规则有误）", completed: "完成", in_progress: "进行中" };

export function Access({ me }) {
  const state = useApi("audit");
  return (
    <div>
      <section class="card">
        <h2>当前登录</h2>
        <p>
          {me.role_name}（{me.user}）：{me.stores.length ? `门店 ${me.stores.join("、")}` : "全部门店与全连锁"}
        </p>
        <table class="wrap">
          <thead>
            <tr>
              <th>可以做什么</th>
              <th>运营</th>
              <th>店长</th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <td>查看指标、预警、工单、会员、召回</td>
              <td>全部门店与全连锁</td>
              <td>仅自己的门店</td>
            </tr>
            <tr>
              <td>处理差评工单</td>
              <td>是</td>
              <td>仅自己的门店</td>
            </tr>
            <tr>
              <td>编辑、检查、预览规则</td>
              <td>是</td>
              <td>是（只能预览）</td>
            </tr>
            <tr>
              <td>发布、回滚规则</td>
              <td>是</td>
              <td>否</td>
            </tr>
            <tr>
              <td>删除会员个人数据</td>
              <td>是</td>
              <td>否</td>
            </tr>
          </tbody>
        </table>
      </section>
      <section class="card">
        <h2>审计日志{me.role === "store_manager" ? "（我的操作）" : ""}</h2>
        <Status state={state} />
        {state.data && (
          <Table
            rows={state.data.entries}
            cols={[
              ["时间", (a) => when(a.at)],
              ["谁", (a) => a.user],
              ["做了什么", (a) => ACTION[a.action] || a.action],
              ["对象", (a) => a.target],
              ["结果", (a) => OUTCOME[a.outcome] || a.outcome],
            ]}
            empty="还没有通过运营台做过的改动。"
          />
        )}
      </section>
    </div>
  );
}
