// A plain table: cols are [heading, row => cell]; wide tables scroll sideways on a phone.
export function Table({ rows, cols, empty }) {
  if (!rows.length) return <p class="muted">{empty}</p>;
  return (
    <div class="scroll">
      <table>
        <thead>
          <tr>
            {cols.map(([h]) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              {cols.map(([h, f]) => (
                <td key={h}>{f(row)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
