import { useState } from "preact/hooks";
import { api, session } from "../api.js";

export function Login({ onLogin }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const loginUrl = document.body.dataset.loginUrl;
  const submit = async (event) => {
    event.preventDefault();
    session.set(token.trim());
    try {
      await api("me");
      setError("");
      onLogin();
    } catch (e) {
      session.clear();
      setError(e.status === 401 ? "令牌不对，请核对 make run 启动时打印的运营台登录令牌。" : e.message);
    }
  };
  return (
    <div class="login">
      <h1>siyu 私域运营台</h1>
      <form onSubmit={submit}>
        <label for="token">登录令牌</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          placeholder="本地：make run 启动时打印的令牌"
        />
        <button type="submit" class="primary">
          登录
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      {loginUrl && (
        <p>
          <a class="button" href={`${loginUrl}&redirect_uri=${encodeURIComponent(location.origin + location.pathname)}`}>
            使用企业账号登录
          </a>
        </p>
      )}
      <p class="hint">运营可查看全部门店并发布规则；店长只能查看和处理自己门店的数据。</p>
    </div>
  );
}
