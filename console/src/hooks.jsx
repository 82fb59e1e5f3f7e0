import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";

// Load one API path; reload() fetches it again. Returns {data, error, loading, reload}.
export function useApi(path) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api(path)
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((error) => live && setState({ data: null, error, loading: false }));
    return () => {
      live = false;
    };
  }, [path, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function Status({ state }) {
  if (state.error)
    return (
      <p class="error" role="alert">
        {state.error.message}
      </p>
    );
  if (state.loading && !state.data) return <p class="muted">加载中…</p>;
  return null;
}
