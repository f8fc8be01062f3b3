import { useState } from 'react';
import { useInventoryUpdates } from '@tidings/client/react';
import type { InventoryChange } from '@tidings/client';

type Row = InventoryChange & { key: string };

/** Live stock movements, newest first. Every string is rendered as text. */
export function InventoryPage() {
  const [rows, setRows] = useState<Row[]>([]);
  const { isConnected } = useInventoryUpdates(({ data, typed, position }) => {
    if (!typed || data.type !== 'inventory:change') return; // legacy messages: not for this table
    setRows((current) => [{ ...data, key: position ?? `${data.productId}-${data.timestamp}` }, ...current].slice(0, 200));
  });
  return (
    <section>
      <h1>
        Inventory <span className={isConnected ? 'badge on' : 'badge'}>{isConnected ? 'live' : 'reconnecting…'}</span>
      </h1>
      <table>
        <thead>
          <tr>
            <th>Time</th>
            <th>Product</th>
            <th>Action</th>
            <th>Quantity</th>
            <th>Change</th>
            <th>By</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key}>
              <td>{new Date(row.timestamp).toLocaleTimeString()}</td>
              <td>{row.productName ?? row.productId}</td>
              <td>{row.action}</td>
              <td>
                {row.oldQuantity} → {row.newQuantity}
              </td>
              <td className={row.changeAmount >= 0 ? 'up' : 'down'}>
                {row.changeAmount >= 0 ? '+' : ''}
                {row.changeAmount}
              </td>
              <td>{row.operator ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && <p>Waiting for stock movements…</p>}
    </section>
  );
}
