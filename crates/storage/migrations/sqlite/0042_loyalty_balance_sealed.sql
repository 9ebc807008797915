-- Issue 12/13 (adv9, 1i/1j): a member's loyalty balance was stored in clear,
-- one per member over every co-op, so two colluding co-ops with the file
-- solved "my points + your points = a balance" and paired their cards (8 of
-- 8). The balance is now sealed to its row under a node key (`balance_ct`);
-- `balance` is 0 for every row written since. Rows an older node wrote keep
-- their clear balance until the member's next earn, reservation or refund.
ALTER TABLE trust_loyalty_balances ADD COLUMN balance_ct BLOB;
