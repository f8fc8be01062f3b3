import { useState } from 'react';
import { useApprovalUpdates } from '@tidings/client/react';
import type { Approval } from '@tidings/client';

type Item = Approval & { state: 'pending' | 'approved' | 'rejected' };

/** Approval requests, updated in place when they are approved or rejected. */
export function ApprovalsPage() {
  const [items, setItems] = useState<Map<string, Item>>(new Map());
  const { isConnected } = useApprovalUpdates(({ data, typed }) => {
    if (!typed) return;
    let state: Item['state'];
    if (data.type === 'approval:request') state = 'pending';
    else if (data.type === 'approval:approved') state = 'approved';
    else if (data.type === 'approval:rejected') state = 'rejected';
    else return;
    setItems((current) => new Map(current).set(`${data.resourceType}:${data.resourceId}`, { ...data, state }));
  });
  const list = [...items.values()].sort((a, b) => b.timestamp - a.timestamp);
  return (
    <section>
      <h1>
        Approvals <span className={isConnected ? 'badge on' : 'badge'}>{isConnected ? 'live' : 'reconnecting…'}</span>
      </h1>
      <table>
        <thead>
          <tr>
            <th>Request</th>
            <th>Type</th>
            <th>Requested by</th>
            <th>State</th>
            <th>Note</th>
          </tr>
        </thead>
        <tbody>
          {list.map((item) => (
            <tr key={`${item.resourceType}:${item.resourceId}`}>
              <td>{item.resourceNumber}</td>
              <td>{item.resourceType}</td>
              <td>{item.requesterName}</td>
              <td>
                {item.state}
                {item.approverName ? ` (${item.approverName})` : ''}
              </td>
              <td>{item.reason ?? item.comment ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length === 0 && <p>No approval activity yet.</p>}
    </section>
  );
}
