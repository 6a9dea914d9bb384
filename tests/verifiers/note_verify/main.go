// note_verify: an independent check of Licentra audit checkpoints with the Go reference
// implementation of C2SP signed notes (golang.org/x/mod/sumdb/note).
//
// usage: note_verify VERIFIER_KEY_FILE NOTE_FILE
// Exit 0 and print the verified note text if the note carries a valid signature by the key;
// exit 1 with the reason otherwise; exit 2 on bad usage or unreadable files.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: note_verify VERIFIER_KEY_FILE NOTE_FILE")
		os.Exit(2)
	}
	vkey, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	msg, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifier key:", err)
		os.Exit(1)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fmt.Fprintln(os.Stderr, "note:", err)
		os.Exit(1)
	}
	fmt.Print(n.Text)
}
