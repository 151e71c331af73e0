package codec

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// closeRowRE is a row of the close-code table of docs/PROTOCOL.md §12:
// | code | name | rule | when |.
var closeRowRE = regexp.MustCompile(`^\| (\d{4}) \| ([a-z ]+) \| (backoff|new credentials|final) \| `)

// TestCloseCodesMatchProtocolDoc holds CloseCode's names and reconnect
// rules to the table of PROTOCOL.md §12, which the TypeScript SDK's test
// reads too: one policy, checked in both languages.
func TestCloseCodesMatchProtocolDoc(t *testing.T) {
	doc, err := os.ReadFile(protocolDocPath)
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc)[strings.Index(string(doc), "## 12. Close codes"):]
	section = section[:strings.Index(section, "\n## 13.")]
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		m := closeRowRE.FindStringSubmatch(line)
		if m == nil {
			if strings.HasPrefix(line, "| 1") || strings.HasPrefix(line, "| 4") {
				t.Errorf("a row the test cannot read: %s", line)
			}
			continue
		}
		rows++
		n, _ := strconv.Atoi(m[1])
		code := CloseCode(n)
		if code.String() != m[2] {
			t.Errorf("%d: CloseCode names it %q, the doc %q", n, code.String(), m[2])
		}
		if code.Reconnect().String() != m[3] {
			t.Errorf("%d (%s): CloseCode's rule is %q, the doc's %q", n, m[2], code.Reconnect(), m[3])
		}
	}
	// Every code the codec names is in the table, but 1005, which no
	// endpoint sends (it stands for "no code" in APIs).
	if want := len(closeNames) - 1; rows != want {
		t.Errorf("the table has %d codes, the codec names %d", rows, want)
	}
}

func TestCloseCodeString(t *testing.T) {
	for _, tc := range []struct {
		code CloseCode
		want string
	}{
		{CloseSlowConsumer, "slow consumer"},
		{CloseNotAuthenticated, "not authenticated"},
		{4123, "close 4123"},
	} {
		if got := tc.code.String(); got != tc.want {
			t.Errorf("%d: %q, want %q", tc.code, got, tc.want)
		}
	}
	if CloseCode(4123).Reconnect() != ReconnectBackoff {
		t.Error("an unknown code must be taken as a passing failure")
	}
}
