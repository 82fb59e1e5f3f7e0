// siyu 私域运营台: one page, routed by the URL's fragment (#/today, #/members/oDemo1 …).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, session } from "./api.js";
import { Access } from "./pages/Access.jsx";
import { Alerts } from "./pages/Alerts.jsx";
import { CampaignsPage } from "./pages/Campaigns.jsx";
import { Login } from "./pages/Login.jsx";
import { Members } from "./pages/Members.jsx";
import { Recall } from "./pages/Recall.jsx";
import { Rules } from "./pages/Rules.jsx";
import { Tickets } from "./pages/Tickets.jsx";
import { Today } from "./pages/Today.jsx";
import "./style.css";

const PAGES = [
  { path: "today", title: "今日/本周", page: Today },
  { path: "alerts", title: "预警", page: Alerts },
  { path: "tickets", title: "差评工单", page: Tickets },
  { path: "members", title: "会员", page: Members },
  { path: "campaigns", title: "活动与日历", page: CampaignsPage },
  { path: "rules", title: "规则", page: Rules },
  { path: "recall", title: "召回与实验", page: Recall },
  { path: "access", title: "权限与审计", page: Access },
];

function route() {
  const [path, ...rest] = (location.hash.replace(/^#\/?/, "") || "today").split("/");
  return { path, args: rest.map(decodeURIComponent) };
}

// Cognito's hosted login returns with #id_token=… : keep it as the login, then go to the start.
function takeIdToken() {
  const match = /id_token=([^&]+)/.exec(location.hash);
  if (match) {
    session.set(decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + "#/today");
  }
}

function App() {
  const [where, setWhere] = useState(route());
  const [me, setMe] = useState(null);
  const [checked, setChecked] = useState(false);

  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);

  const loadMe = () =>
    api("me")
      .then(setMe)
      .catch(() => setMe(null))
      .finally(() => setChecked(true));
  useEffect(() => {
    takeIdToken();
    if (session.get()) loadMe();
    else setChecked(true);
  }, []);

  if (!checked) return <p class="boot">正在加载运营台…</p>;
  if (!me) return <Login onLogin={loadMe} />;

  const current = PAGES.find((p) => p.path === where.path) || PAGES[0];
  const Page = current.page;
  const logout = () => {
    session.clear();
    setMe(null);
  };
  return (
    <div class="shell">
      <header class="top">
        <strong class="brand">siyu 私域运营台</strong>
        <span class="who" data-test="who">
          {me.role_name} · {me.user}
          {me.stores.length ? `（${me.stores.join("、")}）` : "（全部门店）"}
        </span>
        <button class="link" onClick={logout}>
          退出
        </button>
      </header>
      <nav class="tabs">
        {PAGES.map((p) => (
          <a href={`#/${p.path}`} class={p === current ? "on" : ""} key={p.path}>
            {p.title}
          </a>
        ))}
      </nav>
      <main>
        <Page me={me} args={where.args} key={current.path} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app"));
