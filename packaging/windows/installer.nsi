; QwenLong Reader's Windows installer (NSIS 3.08 or newer).
;
; Built by packaging/build_windows_installer.sh, which passes:
;   makensis -DVERSION=0.1.0 -DVERSION_QUAD=0.1.0.0 -DBUNDLE_DIR=dist\QwenLongReader
;            -DOUTFILE=dist\QwenLongReader-0.1.0-setup.exe [-DSIGN_CMD=...]
;            [-DCOMPRESSOR=zlib] packaging\windows\installer.nsi
; BUNDLE_DIR is PyInstaller's one-dir output (packaging/qwenlong-reader.spec).
;
; Per user, no administrator rights: installs into %LOCALAPPDATA%\Programs\QwenLong Reader,
; a Start menu shortcut, an uninstaller listed in Settings > Apps (HKCU), and optionally
; (unselected by default) "Open with" for PDF files.
;
; Signing: with SIGN_CMD defined, makensis runs `SIGN_CMD <file>` on the finished
; installer and on the uninstaller it embeds (!finalize / !uninstfinalize), and fails the
; build if signing fails. Example:
;   SIGN_CMD='signtool sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 /a'
; (the build script signs the two executables of the bundle with the same command).

Unicode true
ManifestDPIAware true
RequestExecutionLevel user

!ifndef VERSION
  !error "define VERSION, e.g. makensis -DVERSION=0.1.0 (build_windows_installer.sh does)"
!endif
!ifndef BUNDLE_DIR
  !define BUNDLE_DIR "..\..\dist\QwenLongReader"
!endif
!ifndef OUTFILE
  !define OUTFILE "QwenLongReader-${VERSION}-setup.exe"
!endif
!ifndef COMPRESSOR
  !define COMPRESSOR "/SOLID lzma"
!endif

!define APP_NAME "QwenLong Reader"
!define APP_EXE "QwenLongReader.exe"
!define CLI_EXE "qwenlong-reader.exe"
!define APP_ID "QwenLongReader"
!define PUBLISHER "QwenLong Reader"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_ID}"
!define APP_KEY "Software\${APP_ID}"
!define PDF_PROGID "QwenLongReader.pdf"
!define ICON "${__FILEDIR__}\..\icons\qwenlong-reader.ico"

!if ! /FileExists "${BUNDLE_DIR}\${APP_EXE}"
  ; The Linux bundle (a packaging check in CI) has no .exe: still compile, but say so.
  !warning "${BUNDLE_DIR}\${APP_EXE} is missing: this installer is a packaging check only"
!endif

!ifdef SIGN_CMD
  !finalize `${SIGN_CMD} "%1"` = 0
  !uninstfinalize `${SIGN_CMD} "%1"` = 0
!endif

Name "${APP_NAME}"
Caption "${APP_NAME} ${VERSION} Setup"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${APP_KEY}" "InstallDir"
SetCompressor ${COMPRESSOR}
BrandingText "${APP_NAME} ${VERSION}"
ShowInstDetails hide
ShowUninstDetails hide

!ifdef VERSION_QUAD
  VIProductVersion "${VERSION_QUAD}"
  VIFileVersion "${VERSION_QUAD}"
  VIAddVersionKey /LANG=1033 "ProductName" "${APP_NAME}"
  VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
  VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
  VIAddVersionKey /LANG=1033 "FileDescription" "${APP_NAME} Setup"
  VIAddVersionKey /LANG=1033 "CompanyName" "${PUBLISHER}"
  VIAddVersionKey /LANG=1033 "LegalCopyright" "Apache-2.0"
!endif

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_SMALLDESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  SetShellVarContext current
FunctionEnd

Function un.onInit
  SetShellVarContext current
FunctionEnd

Section "${APP_NAME}" SecApp
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; An upgrade replaces the whole bundle: no library of the old version may linger.
  RMDir /r "$INSTDIR\_internal"
  File /r "${BUNDLE_DIR}\*.*"

  WriteUninstaller "$INSTDIR\Uninstall.exe"
  CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0

  WriteRegStr HKCU "${APP_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${APP_KEY}" "Version" "${VERSION}"
  ; Win+R "QwenLongReader" starts it, without touching PATH.
  WriteRegStr HKCU "Software\Microsoft\Windows\CurrentVersion\App Paths\${APP_EXE}" "" "$INSTDIR\${APP_EXE}"

  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" "$0"
SectionEnd

; /o: unselected by default. Windows 10 and 11 do not let an installer take over the
; default PDF app; this adds QwenLong Reader to "Open with", where the user can choose it.
Section /o "Open PDF files with ${APP_NAME}" SecPdf
  WriteRegStr HKCU "Software\Classes\${PDF_PROGID}" "" "PDF Document (${APP_NAME})"
  WriteRegStr HKCU "Software\Classes\${PDF_PROGID}\DefaultIcon" "" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "Software\Classes\${PDF_PROGID}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" --open "%1"'
  WriteRegStr HKCU "Software\Classes\.pdf\OpenWithProgids" "${PDF_PROGID}" ""
  WriteRegStr HKCU "Software\Classes\Applications\${APP_EXE}\SupportedTypes" ".pdf" ""
  WriteRegStr HKCU "Software\Classes\Applications\${APP_EXE}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" --open "%1"'
  WriteRegDWORD HKCU "${APP_KEY}" "PdfAssociation" 1
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)' ; SHCNE_ASSOCCHANGED
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecApp} "The application, the command line (${CLI_EXE}) and the small demo model."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecPdf} "List ${APP_NAME} under Open with for PDF files. Your default PDF app stays as it is."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  ; Only what the installer put there: never RMDir /r a folder the user may have chosen.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\${CLI_EXE}"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"

  ReadRegDWORD $0 HKCU "${APP_KEY}" "PdfAssociation"
  DeleteRegValue HKCU "Software\Classes\.pdf\OpenWithProgids" "${PDF_PROGID}"
  DeleteRegKey HKCU "Software\Classes\${PDF_PROGID}"
  DeleteRegKey HKCU "Software\Classes\Applications\${APP_EXE}"
  ${If} $0 == 1
    System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
  ${EndIf}

  DeleteRegKey HKCU "Software\Microsoft\Windows\CurrentVersion\App Paths\${APP_EXE}"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "${APP_KEY}"
  ; The user's library, settings and logs (%LOCALAPPDATA%\QwenLongReader) are kept.
SectionEnd
