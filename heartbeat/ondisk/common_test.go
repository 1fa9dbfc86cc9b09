package ondisk

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUUIDStringParse(t *testing.T) {
	if got := goldenPool.String(); got != "5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f" {
		t.Errorf("String() = %q", got)
	}
	if got := (UUID{}).String(); got != "00000000-0000-0000-0000-000000000000" {
		t.Errorf("zero String() = %q", got)
	}
	all := UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, u := range []UUID{{}, goldenPool, goldenMachine, all, NewUUID(), NewUUID()} {
		s := u.String()
		if len(s) != 36 {
			t.Errorf("%v: String() is %d characters", u, len(s))
		}
		got, err := ParseUUID(s)
		if err != nil || got != u {
			t.Errorf("ParseUUID(%q) = %v, %v; want %v", s, got, err, u[:])
		}
		// 32 hex digits, as /etc/machine-id holds it.
		plain := strings.ReplaceAll(s, "-", "")
		if got, err := ParseUUID(plain); err != nil || got != u {
			t.Errorf("ParseUUID(%q) = %v, %v; want %v", plain, got, err, u[:])
		}
		if got, err := ParseUUID(strings.ToUpper(s)); err != nil || got != u {
			t.Errorf("ParseUUID(upper %q) = %v, %v", s, got, err)
		}
	}
}

func TestParseUUIDBad(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "want 32 hex digits"},
		{"5b0c8d3e", "want 32 hex digits"},
		{"5b0c8d3e2f414c9a8e6d7a1b2c3d4e5", "want 32 hex digits"},   // 31
		{"5b0c8d3e2f414c9a8e6d7a1b2c3d4e5f0", "want 32 hex digits"}, // 33
		{"5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5", "want 32 hex digits"},
		{"5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f0", "want 32 hex digits"},
		{"5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5g", "invalid byte"},
		{"zb0c8d3e2f414c9a8e6d7a1b2c3d4e5f", "invalid byte"},
		{"5b0c8d3e 2f41 4c9a 8e6d 7a1b2c3d4e5f", "8-4-4-4-12"}, // spaces for dashes
		{"{5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e}", "8-4-4-4-12"},
		// Dashes in the wrong places, or too many.
		{"5b0c8d3e2-f41-4c9a-8e6d-7a1b2c3d4e5f", "8-4-4-4-12"},
		{"5b0c-8d3e-2f41-4c9a-8e6d7a1b2c3d4e5f", "8-4-4-4-12"},
		{"-5b0c8d3e2f414c9a8e6d7a1b2c3d4e5f-", "want 32 hex digits"},
		{"--5b0c8d3e2f414c9a8e6d7a1b2c3d4e5f--", "8-4-4-4-12"},
		{"5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d-e5f", "invalid byte"},
		{"5b0c8d3e2f414c9a8e6d-a1b2c3d4e5f", "invalid byte"}, // 32 characters with a dash
		{" 5b0c8d3e2f414c9a8e6d7a1b2c3d4e5f", "want 32 hex digits"},
	}
	for _, tt := range tests {
		got, err := ParseUUID(tt.in)
		if err == nil {
			t.Errorf("ParseUUID(%q) = %v, nil; want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseUUID(%q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
		if !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("ParseUUID(%q): error %q does not quote the input", tt.in, err)
		}
		if got != (UUID{}) {
			t.Errorf("ParseUUID(%q) returned %v with its error", tt.in, got)
		}
	}
}

func TestNewUUID(t *testing.T) {
	seen := map[UUID]bool{}
	for i := 0; i < 100; i++ {
		u := NewUUID()
		if u.IsZero() {
			t.Fatal("NewUUID returned the zero UUID")
		}
		if seen[u] {
			t.Fatalf("NewUUID repeated %v", u)
		}
		seen[u] = true
		if v := u[6] >> 4; v != 4 {
			t.Errorf("%v: version %d, want 4", u, v)
		}
		if r := u[8] >> 6; r != 2 {
			t.Errorf("%v: variant bits %b, want 10", u, r)
		}
		if s := u.String(); s[14] != '4' || !strings.ContainsRune("89ab", rune(s[19])) {
			t.Errorf("%v: not printed as a version 4 UUID", s)
		}
	}
}

func TestUUIDIsZero(t *testing.T) {
	if !(UUID{}).IsZero() {
		t.Error("zero UUID: IsZero() = false")
	}
	for i := 0; i < 16; i++ {
		var u UUID
		u[i] = 1
		if u.IsZero() {
			t.Errorf("UUID with byte %d set: IsZero() = true", i)
		}
	}
}

func TestUUIDText(t *testing.T) {
	b, err := goldenPool.MarshalText()
	if err != nil || string(b) != goldenPool.String() {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	var u UUID
	if err := u.UnmarshalText([]byte("5B0C8D3E-2F41-4C9A-8E6D-7A1B2C3D4E5F")); err != nil || u != goldenPool {
		t.Errorf("UnmarshalText = %v, %v", u, err)
	}
	u = goldenMachine
	if err := u.UnmarshalText([]byte("not-a-uuid")); err == nil {
		t.Error("UnmarshalText(not-a-uuid) = nil, want an error")
	}
	if u != goldenMachine {
		t.Errorf("failed UnmarshalText changed the value to %v", u)
	}

	// Through JSON, as status and dump print them.
	type rec struct {
		Pool   UUID       `json:"pool"`
		State  SlotState  `json:"state"`
		Status SlotStatus `json:"status"`
	}
	in := rec{goldenPool, StateLeaving, SlotMisplaced}
	j, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pool":"5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f","state":"leaving","status":"misplaced"}`
	if string(j) != want {
		t.Errorf("JSON = %s, want %s", j, want)
	}
	var out rec
	if err := json.Unmarshal(j, &out); err != nil || out != in {
		t.Errorf("JSON round trip = %+v, %v", out, err)
	}
	for _, bad := range []string{
		`{"pool":"5b0c8d3e"}`, `{"state":"dead"}`, `{"status":"fine"}`,
	} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("json.Unmarshal(%s) = nil, want an error", bad)
		}
	}
}

func TestIsZero(t *testing.T) {
	if !IsZero(nil) || !IsZero(make([]byte, 4096)) {
		t.Error("IsZero of zeroes = false")
	}
	for _, i := range []int{0, 511, 4095} {
		b := make([]byte, 4096)
		b[i] = 0x80
		if IsZero(b) {
			t.Errorf("IsZero with byte %d set = true", i)
		}
	}
}
