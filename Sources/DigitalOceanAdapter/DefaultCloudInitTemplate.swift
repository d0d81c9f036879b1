// The shipped default cloud-init template, compiled in so the daemon needs no file to find.
// It is deploy/cloud-init.sh.tmpl, byte for byte (a test compares them): edit both together.

import Reconciler

extension AgentEnrollment {
    /// `deploy/cloud-init.sh.tmpl`: the platform's bootstrap script.
    public static let defaultTemplate = #"""
        #!/bin/bash
        # citrus-reconciler's default cloud-init user_data: installs the Citrus Agent on a new server and
        # starts it, so that it connects back to the Engine Hub (design.md, "Agent bootstrap and health").
        #
        # For each create attempt the daemon fills in the three placeholders below (the agent's id, its key
        # and the hub's address, each in braces: every occurrence is replaced, comments too) and sends
        # the result as the droplet's user_data (at most 64 KiB once rendered). To change it, copy this
        # file, edit it, and point --cloud-init-template (CITRUS_CLOUD_INIT_TEMPLATE) at the copy.
        #
        # The key is a secret on the server too: the script never traces or echoes it (no `set -x`), and it
        # is written only to a root-owned file of mode 0600 that systemd reads for the agent's unit.
        # cloud-init keeps its own root-only copies of user_data under /var/lib/cloud/instance. The droplet
        # metadata service (169.254.169.254) serves user_data to any process that asks: step 0 lets only
        # root ask, at every boot, before the agent starts. The key is single-use: once the agent has
        # connected with it, the hub gives the agent a credential of its own (kept in the agent's state
        # directory) and the key no longer works; a new create attempt always gets a new key.
        set -euo pipefail
        set +x
        umask 077

        # Where the platform publishes the agent, and the SHA-256 of that release: set both to your own.
        # A download whose checksum differs is never installed (the script stops, and cloud-init says so).
        CITRUS_AGENT_URL="https://downloads.example.com/citrus-agent/citrus-agent-linux-amd64"
        CITRUS_AGENT_SHA256="0000000000000000000000000000000000000000000000000000000000000000"

        # 0. Only root may reach the metadata service, which holds this script, key included. The rule is
        #    put in place at every boot (rules do not survive a reboot) before the agent starts, which
        #    requires it; root's own tools (cloud-init, DigitalOcean's droplet agent) keep their access.
        cat > /usr/local/sbin/citrus-metadata-guard <<'CITRUS_METADATA_GUARD'
        #!/bin/sh
        set -eu
        # Root, and DigitalOcean's monitoring agent if it is installed (monitoring on), which reads its own
        # token there.
        uids=0
        if uid=$(id -u do-agent 2>/dev/null); then uids="0 $uid"; fi
        if command -v nft >/dev/null 2>&1; then
            # Declared, emptied and filled in one transaction: running it again changes nothing.
            nft -f - <<NFT
        table inet citrus_metadata_guard
        delete table inet citrus_metadata_guard
        table inet citrus_metadata_guard {
            chain output {
                type filter hook output priority 0; policy accept;
                ip daddr 169.254.169.254 meta skuid != { $(echo $uids | tr ' ' ',') } reject
            }
        }
        NFT
        else
            iptables -N CITRUS_METADATA_GUARD 2>/dev/null || iptables -F CITRUS_METADATA_GUARD
            for uid in $uids; do iptables -A CITRUS_METADATA_GUARD -m owner --uid-owner "$uid" -j RETURN; done
            iptables -A CITRUS_METADATA_GUARD -j REJECT
            iptables -C OUTPUT -d 169.254.169.254 -j CITRUS_METADATA_GUARD 2>/dev/null ||
                iptables -I OUTPUT 1 -d 169.254.169.254 -j CITRUS_METADATA_GUARD
        fi
        CITRUS_METADATA_GUARD
        chmod 0755 /usr/local/sbin/citrus-metadata-guard
        cat > /etc/systemd/system/citrus-metadata-guard.service <<'CITRUS_METADATA_GUARD_UNIT'
        [Unit]
        Description=Only root may reach the droplet metadata service (it holds the agent's bootstrap key)
        Before=citrus-agent.service

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/usr/local/sbin/citrus-metadata-guard

        [Install]
        WantedBy=multi-user.target
        CITRUS_METADATA_GUARD_UNIT
        chmod 0644 /etc/systemd/system/citrus-metadata-guard.service
        systemctl daemon-reload
        systemctl enable --now citrus-metadata-guard.service

        # 0b. Password login off: the droplet's SSH keys (--ssh-keys, a row's ssh_keys) are the way in, and
        #     the root password DigitalOcean emails for a droplet made without keys never opens a session.
        if [ -d /etc/ssh/sshd_config.d ]; then
            printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' \
                > /etc/ssh/sshd_config.d/60-citrus-no-passwords.conf
            chmod 0644 /etc/ssh/sshd_config.d/60-citrus-no-passwords.conf
            systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true
        fi

        # 1. A user of its own for the agent.
        if ! id citrus-agent >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin citrus-agent
        fi

        # 2. The agent itself.
        curl --fail --silent --show-error --location --proto '=https' --retry 5 --output /tmp/citrus-agent "$CITRUS_AGENT_URL"
        echo "$CITRUS_AGENT_SHA256  /tmp/citrus-agent" | sha256sum --check --strict --quiet
        install -m 0755 -o root -g root /tmp/citrus-agent /usr/local/bin/citrus-agent
        rm -f /tmp/citrus-agent

        # 3. Its three values, in a file only root can read (systemd reads it before dropping privileges).
        install -d -m 0700 -o root -g root /etc/citrus-agent
        install -m 0600 -o root -g root /dev/null /etc/citrus-agent/agent.env
        cat > /etc/citrus-agent/agent.env <<'CITRUS_AGENT_ENV'
        AGENT_ID={AGENT_ID}
        AGENT_KEY={AGENT_KEY}
        ENGINE_WS_URL={ENGINE_WS_URL}
        CITRUS_AGENT_ENV

        # 4. The citrus-agent unit: connects to the hub at start-up and stays connected.
        cat > /etc/systemd/system/citrus-agent.service <<'CITRUS_AGENT_UNIT'
        [Unit]
        Description=Citrus Agent (connects this server to the Engine Hub)
        Wants=network-online.target
        After=network-online.target citrus-metadata-guard.service
        Requires=citrus-metadata-guard.service

        [Service]
        EnvironmentFile=/etc/citrus-agent/agent.env
        ExecStart=/usr/local/bin/citrus-agent
        User=citrus-agent
        Group=citrus-agent
        # Where the agent keeps the hub's credential (its bootstrap key works once): only it may read it.
        StateDirectory=citrus-agent
        StateDirectoryMode=0700
        Restart=always
        RestartSec=5
        NoNewPrivileges=yes
        ProtectSystem=strict
        ProtectHome=yes
        PrivateTmp=yes
        PrivateDevices=yes

        [Install]
        WantedBy=multi-user.target
        CITRUS_AGENT_UNIT
        chmod 0644 /etc/systemd/system/citrus-agent.service

        systemctl daemon-reload
        systemctl enable --now citrus-agent.service

        """#
}
